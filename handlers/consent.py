"""The privacy notice before the first personal field, and the mobile an anonymous web visitor
gives before paging a person.

**Notice and consent.** Before the bot first asks for a contact name, a mobile or a credit code,
it shows who processes them, for what, for how long and how to ask for deletion, on the same
message as the question. Answering with the field is the affirmative act that consents (GB/T
35273-2020 5.4: 主动填写或提供); "不同意" stops, and nothing personal is kept. The consent is
recorded (``privacy_consent``) with the notice version, once per person.

**A mobile before a person is paged.** A web visitor costs a cookie, so a handoff or complaint
from a web visitor whose enterprise has no mobile on file asks for one first (README, "Limits").
The mobile is no proof of identity, but it is what a commissioner calls back, one mobile counts
as one person for the open-case quota, and it turns a free script into one that must invent
numbers, while the per-address and per-channel limits bound what invented numbers achieve.
"""

from __future__ import annotations

from typing import Any

from bot.messages import Reply
from bot.services import consent, enterprises
from bot.services.limits import ANONYMOUS_CHANNELS
from handlers.base import Match, Outcome, TurnContext
from handlers.words import bare, words
from intents.extract import find_mobiles

GATE_FLOW = "contact_gate"
NOTICE_SHOWN = "privacy_notice_shown"  # in a flow's state: the notice went out with a question
PERSONAL_FIELDS = ("credit_code", "contact_name", "mobile")
FIELD_NAMES_ZH = {"credit_code": "统一社会信用代码", "contact_name": "联系人姓名", "mobile": "手机号码"}
DECLINE = words("consent_decline")
_CANCEL = words("consent_cancel")


def declined(ctx: TurnContext) -> bool:
    return bare(ctx.message.text) in DECLINE


async def notice(ctx: TurnContext, fields: tuple[str, ...]) -> Reply | None:
    """The privacy notice, unless this person already agreed to the current version. Marks the
    flow's state, so the answer that follows can be taken as consent."""
    if await consent.has_consent(ctx.session, ctx.identity.id):
        return None
    ctx.state.data[NOTICE_SHOWN] = True
    policy = ctx.policy
    return ctx.say(
        "privacy_notice", fields="、".join(FIELD_NAMES_ZH[f] for f in fields), operator=policy.operator_name,
        years=policy.retention_years, contact=policy.operator_contact, link=policy.privacy_link,
    )


async def consented(ctx: TurnContext, purpose: str) -> None:
    """The person gave a personal field after seeing the notice: record the consent once."""
    if ctx.state.data.pop(NOTICE_SHOWN, None) and not await consent.has_consent(ctx.session, ctx.identity.id):
        await consent.record(ctx.session, ctx.identity, purpose=purpose, method="provided", now=ctx.now)


async def require_mobile(ctx: TurnContext, action: str, **data: Any) -> Outcome | None:
    """For an anonymous web visitor without a mobile on file: ask for one (after the notice)
    and hold ``action`` (handoff | complaint) until it comes. None when nothing is needed."""
    if ctx.identity.channel not in ANONYMOUS_CHANNELS:
        return None
    enterprise = await enterprises.existing_enterprise(ctx.session, ctx.identity)
    if enterprise is not None and enterprise.mobile:
        return None
    ctx.state.enter(GATE_FLOW, action=action, **data)
    shown = await notice(ctx, ("mobile",))
    ask = ctx.say("contact_gate_ask", action=action)
    return Outcome((shown, ask) if shown is not None else (ask,))


class ContactGateHandler:
    """Owns the wait for the mobile; with it, resumes the held handoff or complaint."""

    name = "contact_gate"
    flows = frozenset({GATE_FLOW})

    def matches(self, ctx: TurnContext) -> Match | None:
        if ctx.state.flow != GATE_FLOW:
            return None
        word = bare(ctx.message.text)
        if word in _CANCEL:
            return Match("cancel")
        if word in DECLINE:
            return Match("decline")
        if find_mobiles(ctx.message.text):
            return Match("mobile")
        if not any(ch.isdigit() for ch in word) and len(word) > 4:
            return Match("other")  # something else entirely (a question): answered as itself
        return Match("invalid")

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        if match.reason == "invalid":
            return Outcome((ctx.say("contact_gate_invalid"),))
        held = dict(ctx.state.data)
        ctx.state.clear()
        if match.reason == "cancel":
            return Outcome((ctx.say("contact_gate_cancelled"),))
        if match.reason == "decline":
            return Outcome((ctx.say("privacy_declined"),))
        if match.reason == "other":
            return Outcome((), then_dispatch=True)
        action = str(held.get("action", ""))
        enterprise = await enterprises.enterprise_for(ctx.session, ctx.identity)
        enterprises.update_profile(enterprise, {"mobile": find_mobiles(ctx.message.text)[0]})
        ctx.state.data[NOTICE_SHOWN] = held.get(NOTICE_SHOWN)
        await consented(ctx, action)
        ctx.state.clear()
        # Imported here: both handlers call require_mobile from this module.
        if action == "complaint":
            from handlers.complaint import CONFIRM_FLOW, ComplaintHandler

            ctx.state.enter(CONFIRM_FLOW, text=str(held.get("text", "")))
            return await ComplaintHandler().handle(ctx, Match("yes"))
        from handlers.handoff import HandoffHandler

        return await HandoffHandler().handle(
            ctx, Match("act", {"description": held.get("text"), "domain": held.get("domain")}))
