"""Complaints about the service received (服务投诉): recorded with their own number and routed to
the management institution; the reply comes back in the enterprise's channel.

A complaint is filed only when the user clearly complains: the word itself ("我要投诉") or a
classifier sure of it. When it is less sure ("电话打不通", an answer that reads as a grievance),
the bot asks "您是要投诉吗？" first; "是" files the first message, anything else is handled as
what it is. Filing a complaint against a commissioner on a misread answer is worse than asking.
"""

from __future__ import annotations

from bot.services import cases, complaints, enterprises
from handlers import consent, guard, signals
from handlers.base import Match, Outcome, TurnContext
from handlers.words import bare
from intents.extract import find_case_numbers

TEXT_FLOW = "complaint_text"
CONFIRM_FLOW = "complaint_confirm"
_BARE_REQUEST = ("我要投诉", "投诉", "我想投诉", "要投诉", "我要举报", "投诉一下")


class ComplaintHandler:
    name = "complaint"
    flows = frozenset({TEXT_FLOW, CONFIRM_FLOW})

    def matches(self, ctx: TurnContext) -> Match | None:
        if ctx.state.flow == TEXT_FLOW:
            return Match("text")
        if ctx.state.flow == CONFIRM_FLOW:
            answer = signals.complaint_answer(ctx)
            if answer is not None:
                return Match(answer)
            if signals.complaint_verdict(ctx) == "file":  # a clear complaint is a yes too
                return Match("yes_again")
            return Match("other")
        verdict = signals.complaint_verdict(ctx)
        if verdict == "file":
            return Match("act")
        return Match("ask") if verdict == "ask" else None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        text = ctx.message.text.strip()
        if match.reason == "ask":
            ctx.state.enter(CONFIRM_FLOW, text=text)
            return Outcome((ctx.say("complaint_confirm", choices=("是", "不是")),))
        if match.reason in ("no", "other"):
            ctx.state.clear()
            if match.reason == "no":
                return Outcome((ctx.say("complaint_not_filed"),))
            return Outcome((), then_dispatch=True)  # not about the question: answer it as itself
        if match.reason in ("yes", "yes_again"):
            first = str(ctx.state.data.get("text", ""))
            text = f"{first}\n{text}" if match.reason == "yes_again" and first else first
            match = Match("act")
        if match.reason == "act" and (bare(text) in _BARE_REQUEST or len(bare(text)) <= 4):
            ctx.state.enter(TEXT_FLOW)
            return Outcome((ctx.say("complaint_ask"),))
        ctx.state.clear()
        gate = await consent.require_mobile(ctx, "complaint", text=text)  # anonymous web visitors
        if gate is not None:
            return gate
        refused = await guard.refused(ctx, "complaint")
        if refused is not None:
            return refused
        enterprise = await enterprises.enterprise_for(ctx.session, ctx.identity)
        case = None
        for number in find_case_numbers(text):
            case = await cases.case_of_enterprise(ctx.session, number, enterprise.id)
            if case is not None:
                break
        complaint = await complaints.file_complaint(
            ctx.session, identity=ctx.identity, enterprise=enterprise, text=text, case=case, now=ctx.now
        )
        if case is not None:
            cases.add_event(case, "complaint", "enterprise", ctx.now, complaint.number)
        return Outcome((ctx.say("complaint_filed", number=complaint.number),))
