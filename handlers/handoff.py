"""Live handoff (转人工): connect to a person, then stay silent and relay until the person (or
the enterprise) ends the session or it idles out. The bot never talks over a human."""

from __future__ import annotations

from bot.privacy import mask_name
from bot.services import enterprises, live
from handlers import consent, guard, signals
from handlers.base import Match, Outcome, TurnContext
from handlers.knowledge import LAST_DOMAIN
from handlers.words import bare

END_WORDS = frozenset({"结束人工", "退出人工", "结束人工服务", "不用人工了", "结束对话", "返回机器人"})


class HandoffHandler:
    name = "handoff"
    flows: frozenset[str] = frozenset()

    def matches(self, ctx: TurnContext) -> Match | None:
        # A handoff opens a case and pages a person: not on noise the classifier is unsure of.
        return Match("act") if signals.handoff_wanted(ctx) else None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        # Resumed by the contact gate (handlers/consent.py), the request and its domain are the held ones.
        domain = match.data.get("domain") or (
            ctx.nlu.domain if ctx.nlu.act == "inquiry" else ctx.state.data.get(LAST_DOMAIN))
        description = match.data.get("description") or ctx.message.text
        gate = await consent.require_mobile(ctx, "handoff", text=description, domain=domain)
        if gate is not None:
            return gate
        refused = await guard.refused(ctx, "handoff")
        if refused is not None:
            return refused
        enterprise = await enterprises.enterprise_for(ctx.session, ctx.identity)
        started = await live.start(
            ctx.session, identity=ctx.identity, enterprise=enterprise, domain=domain,
            description=description, now=ctx.now, calendar=ctx.policy.calendar,
        )
        ctx.state.enter(live.LIVE_FLOW, session_id=started.session_id, case=started.case.number)
        owner = mask_name(started.commissioner.name) if started.commissioner else ""
        if started.on_duty_now:
            return Outcome((ctx.say("handoff_connected", owner=owner, number=started.case.number),))
        expect = started.expect_by.astimezone(ctx.policy.calendar.tz).strftime("%m月%d日 %H:%M")
        return Outcome((ctx.say("handoff_waiting", owner=owner, number=started.case.number, expect_by=expect),))


class LiveHandler:
    """Owns the ``live`` flow: relays every message to the commissioner and replies nothing."""

    name = "live"
    flows = frozenset({live.LIVE_FLOW})

    def matches(self, ctx: TurnContext) -> Match | None:
        return Match("live") if ctx.state.flow == live.LIVE_FLOW else None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        current = await live.active_session(ctx.session, ctx.identity.id)
        if current is None:  # ended elsewhere; answer normally
            ctx.state.clear()
            return Outcome((), then_dispatch=True)
        if bare(ctx.message.text) in END_WORDS:
            await live.end(ctx.session, current, "enterprise", ctx.now, from_outside=False)
            ctx.state.clear()
            return Outcome((ctx.say("handoff_ended_by_user"),))
        if ctx.now - current.last_activity_at > ctx.policy.live_idle:
            await live.end(ctx.session, current, "system:idle", ctx.now, from_outside=False)
            ctx.state.clear()
            return Outcome((ctx.say("handoff_idle_ended"),), then_dispatch=True)
        await live.relay_from_enterprise(ctx.session, current, ctx.message.text, ctx.now)
        return Outcome(())
