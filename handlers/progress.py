"""Progress queries (需求进度): the enterprise's own cases, and one case's timeline, shown only
to the enterprise that owns it — anyone else gets the answer for a number that does not exist."""

from __future__ import annotations

from bot.privacy import mask_name
from bot.services import cases
from handlers.base import Match, Outcome, TurnContext
from intents.extract import find_case_numbers

# Timeline events an enterprise sees, in its words; internal ones (escalations, reminders,
# follow-ups, live-session bookkeeping) stay on the commissioners' side.
PUBLIC_EVENTS = {
    "created": "提交需求",
    "assigned": "已分派服务专员",
    "accepted": "服务专员已受理",
    "transferred": "转交其他专员办理",
    "replied": "专员回复",
    "resolved": "办结",
    "reopened": "重新打开",
    "rated": "已评价",
    "closed": "完结归档",
    "cancelled": "已撤回",
    "attachment": "补充材料",
}


def _owner(case: cases.ServiceCase) -> str:
    person = case.owner
    return mask_name(person.name) if person else "待分派"


class ProgressHandler:
    name = "progress"
    flows: frozenset[str] = frozenset()

    def matches(self, ctx: TurnContext) -> Match | None:
        numbers = find_case_numbers(ctx.message.text)
        if numbers and ctx.nlu.act in ("progress_query", "inquiry", "help", "greeting"):
            return Match("one", {"number": numbers[0]})
        if ctx.nlu.act == "progress_query":
            return Match("list")
        return None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        enterprise_id = ctx.identity.enterprise_id
        if match.reason == "one":
            number = match.data["number"]
            case = await cases.case_of_enterprise(ctx.session, number, enterprise_id)
            if case is None:
                return Outcome((ctx.say("progress_not_found", number=number),))
            events = [
                {"at": e.created_at.astimezone(ctx.policy.calendar.tz).strftime("%m-%d %H:%M"),
                 "text": PUBLIC_EVENTS[e.kind] + (f"：{e.text}" if e.kind in ("replied", "resolved") and e.text
                                                 else "")}
                for e in case.events if e.kind in PUBLIC_EVENTS
            ]
            return Outcome((ctx.say(
                "progress_detail", number=case.number, domain=cases.domain_name(case.domain),
                status=cases.STATUS_ZH[case.status], owner=_owner(case), events=events,
            ),))
        if enterprise_id is None:
            return Outcome((ctx.say("progress_none"),))
        found = await cases.cases_of_enterprise(ctx.session, enterprise_id)
        if not found:
            return Outcome((ctx.say("progress_none"),))
        rows = [
            {"number": c.number, "domain": cases.domain_name(c.domain), "status": cases.STATUS_ZH[c.status],
             "owner": _owner(c), "updated": c.updated_at.astimezone(ctx.policy.calendar.tz).strftime("%Y-%m-%d")}
            for c in found
        ]
        return Outcome((ctx.say("progress_list", cases=rows),))
