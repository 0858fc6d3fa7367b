"""Messages about a case in progress (企业回复专员): once a commissioner has written to the
enterprise about an open case, what the enterprise says next is most likely the answer ("是的，
都是收银台用的", "好的，明天几点到？"), so it goes on that case's timeline and to that commissioner,
and the bot only says it passed it on. Without this, the answer got "不客气" or a knowledge-base
guess and the commissioner never saw it.

The exchange lasts ``policy.case_conversation`` (72 hours by default) from the commissioner's
last message. Clear new requests (a demand, a progress query, a handoff, a complaint, a
withdrawal, a question the knowledge base answers) are left to their handlers.
"""

from __future__ import annotations

from bot.privacy import mask_name
from bot.services import cases
from handlers import signals
from handlers.base import Match, Outcome, TurnContext
from handlers.complaint import find_complaint_numbers, follows_up
from handlers.knowledge import CLARIFY_FLOW, SUGGEST_FLOW, wants_detail

# Flows that wait for nothing a commissioner's answer could be mistaken for: a pending
# "您是不是想问" list takes its numbers, everything else may be for the commissioner.
_OPEN_FLOWS = frozenset({None, SUGGEST_FLOW, CLARIFY_FLOW})


class CaseMessageHandler:
    name = "case_message"
    flows: frozenset[str] = frozenset()

    def matches(self, ctx: TurnContext) -> Match | None:
        # Only a text from an enterprise can have a case (and a commissioner) to write to; whether
        # a commissioner has written recently is asked of the database in handle().
        if ctx.message.kind != "text" or ctx.identity.enterprise_id is None or ctx.state.flow not in _OPEN_FLOWS:
            return None
        if signals.new_request(ctx) is not None or wants_detail(ctx):
            return None
        if find_complaint_numbers(ctx.message.text) or follows_up(ctx):  # a complaint followed up
            return None
        return Match("maybe")

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        assert ctx.identity.enterprise_id is not None
        since = ctx.now - ctx.policy.case_conversation
        case = await cases.in_conversation(ctx.session, ctx.identity.enterprise_id, since)
        if case is None:  # no commissioner is waiting for an answer: answer the message normally
            return Outcome((), then_dispatch=True)
        holder = await cases.message_from_enterprise(ctx.session, case, ctx.message.text.strip(), ctx.now)
        return Outcome((ctx.say("case_message_forwarded", owner=mask_name(holder.name if holder else None),
                                number=case.number),))
