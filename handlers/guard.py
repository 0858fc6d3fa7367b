"""The abuse-limit check a handler makes before it opens a case, starts a handoff or files a
complaint (the quotas and per-address rates of ``bot/services/limits.py``)."""

from __future__ import annotations

from bot.services import enterprises
from handlers.base import Outcome, TurnContext


async def refused(ctx: TurnContext, kind: str, *, consume: bool = True) -> Outcome | None:
    """The polite refusal when ``kind`` (case | handoff | complaint) is over a limit, else None.
    ``consume=False`` only looks: an intake that would be refused at the end says so at the start."""
    if ctx.limits is None:
        return None
    enterprise = await enterprises.existing_enterprise(ctx.session, ctx.identity)
    refusal = await ctx.limits.check_opening(
        ctx.session, kind=kind, identity=ctx.identity, enterprise=enterprise, address=ctx.message.client_ip,
        now=ctx.now, consume=consume,
    )
    if refusal is None:
        return None
    return Outcome((ctx.say(refusal.text_key, **refusal.values),))
