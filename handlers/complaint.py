"""Complaints about the service received (服务投诉): recorded with their own number and routed to
the management institution; the reply comes back in the enterprise's channel."""

from __future__ import annotations

from bot.services import cases, complaints, enterprises
from handlers.base import Match, Outcome, TurnContext
from handlers.words import bare
from intents.extract import find_case_numbers

TEXT_FLOW = "complaint_text"
_BARE_REQUEST = ("我要投诉", "投诉", "我想投诉", "要投诉", "我要举报", "投诉一下")


class ComplaintHandler:
    name = "complaint"
    flows = frozenset({TEXT_FLOW})

    def matches(self, ctx: TurnContext) -> Match | None:
        if ctx.state.flow == TEXT_FLOW:
            return Match("text")
        return Match("act") if ctx.nlu.act == "complaint" else None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        text = ctx.message.text.strip()
        if match.reason == "act" and (bare(text) in _BARE_REQUEST or len(bare(text)) <= 4):
            ctx.state.enter(TEXT_FLOW)
            return Outcome((ctx.say("complaint_ask"),))
        ctx.state.clear()
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
