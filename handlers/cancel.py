"""Withdrawing (cancel): leave the current flow, or withdraw an open demand after confirming."""

from __future__ import annotations

from bot.services import cases
from handlers.base import Match, Outcome, TurnContext
from handlers.words import bare, words
from intents.extract import find_case_numbers

CONFIRM_FLOW = "cancel_confirm"
YES = words("cancel_yes")


class CancelHandler:
    name = "cancel"
    flows = frozenset({CONFIRM_FLOW})

    def matches(self, ctx: TurnContext) -> Match | None:
        if ctx.state.flow == CONFIRM_FLOW:
            return Match("confirm")
        return Match("act") if ctx.nlu.act == "cancel" else None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        enterprise_id = ctx.identity.enterprise_id
        if match.reason == "confirm":
            number = ctx.state.data.get("number", "")
            ctx.state.clear()
            case = await cases.case_of_enterprise(ctx.session, number, enterprise_id)
            if case is None or case.status not in cases.OPEN_STATUSES:
                return Outcome((ctx.say("cancel_nothing"),))
            if bare(ctx.message.text) not in YES:
                return Outcome((ctx.say("cancel_kept", number=number),))
            await cases.cancel_by_enterprise(ctx.session, case, ctx.now)
            return Outcome((ctx.say("cancel_done", number=number),))

        if ctx.state.flow is not None:  # leaving whatever was going on
            ctx.state.clear()
            return Outcome((ctx.say("cancel_flow"),))
        numbers = find_case_numbers(ctx.message.text)
        if numbers:
            case = await cases.case_of_enterprise(ctx.session, numbers[0], enterprise_id)
            if case is None or case.status not in cases.OPEN_STATUSES:
                return Outcome((ctx.say("cancel_nothing"),))
            await cases.cancel_by_enterprise(ctx.session, case, ctx.now)
            return Outcome((ctx.say("cancel_done", number=case.number),))
        open_cases = await cases.open_cases_of_enterprise(ctx.session, enterprise_id) if enterprise_id else []
        if not open_cases:
            return Outcome((ctx.say("cancel_nothing"),))
        if len(open_cases) > 1:
            return Outcome((ctx.say("cancel_pick", numbers="、".join(c.number for c in open_cases)),))
        case = open_cases[0]
        ctx.state.enter(CONFIRM_FLOW, number=case.number)
        return Outcome((ctx.say("cancel_confirm", number=case.number, domain=cases.domain_name(case.domain),
                                choices=("确认", "保留")),))
