"""Progress queries (需求进度): the enterprise's own cases, and one case's timeline, shown only
to the enterprise that owns it — anyone else gets the answer for a number that does not exist."""

from __future__ import annotations

from bot.privacy import mask_name
from bot.services import cases, complaints
from handlers.base import Match, Outcome, TurnContext
from handlers.complaint import find_complaint_numbers, follows_up, says_filing
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
    """Who handles the case: its owner, else the commissioner it was assigned to (the intake
    already told the user "已为您分派王专员", so the progress list must not say 待分派)."""
    person = case.owner or case.assignee
    return mask_name(person.name) if person else "待分派"


class ProgressHandler:
    name = "progress"
    flows: frozenset[str] = frozenset()

    def matches(self, ctx: TurnContext) -> Match | None:
        # complaints are followed up here too ("查询 TS-2026-000001", "我的投诉处理得怎么样了")
        if (filed := find_complaint_numbers(ctx.message.text)) and not says_filing(ctx):
            return Match("complaint", {"number": filed[0]})
        if follows_up(ctx):
            return Match("complaints")
        numbers = find_case_numbers(ctx.message.text)
        if numbers and ctx.nlu.act in ("progress_query", "inquiry", "help", "greeting"):
            return Match("one", {"number": numbers[0]})
        if ctx.nlu.act == "progress_query":
            return Match("list")
        return None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        enterprise_id = ctx.identity.enterprise_id
        if match.reason in ("complaint", "complaints"):
            return await self._complaints(ctx, match)
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

    @staticmethod
    async def _complaints(ctx: TurnContext, match: Match) -> Outcome:
        """The enterprise's complaints and how each stands, or one of them with its reply."""
        tz = ctx.policy.calendar.tz
        enterprise_id, identity_id = ctx.identity.enterprise_id, ctx.identity.id
        if match.reason == "complaint":
            number = match.data["number"]
            found = await complaints.complaint_of(ctx.session, number, enterprise_id, identity_id)
            if found is None:
                return Outcome((ctx.say("complaint_not_found", number=number),))
            case = await ctx.session.get(cases.ServiceCase, found.case_id) if found.case_id else None
            return Outcome((ctx.say(
                "complaint_detail", number=found.number, status=complaints.status_name(found.status),
                created=found.created_at.astimezone(tz).strftime("%Y-%m-%d"), case=case.number if case else "",
                text=found.text[:200], reply=found.reply or "",
                replied=found.replied_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if found.replied_at else "",
            ),))
        filed = await complaints.complaints_of(ctx.session, enterprise_id, identity_id)
        if not filed:
            return Outcome((ctx.say("complaint_none"),))
        case_numbers = {c.id: c.number for c in await cases.cases_of_enterprise(ctx.session, enterprise_id, 50)} \
            if enterprise_id is not None else {}
        rows = [
            {"number": c.number, "status": complaints.status_name(c.status),
             "created": c.created_at.astimezone(tz).strftime("%Y-%m-%d"), "case": case_numbers.get(c.case_id or 0, "")}
            for c in filed
        ]
        return Outcome((ctx.say("complaint_list", complaints=rows),))
