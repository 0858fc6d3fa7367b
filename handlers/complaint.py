"""Complaints about the service received (服务投诉): recorded with their own number and routed to
the management institution; the reply comes back in the enterprise's channel.

A complaint is filed only when the user clearly complains: the word itself ("我要投诉") or a
classifier sure of it. When it is less sure ("电话打不通", an answer that reads as a grievance),
the bot asks "您是要投诉吗？" first; "是" files the first message, anything else is handled as
what it is. Filing a complaint against a commissioner on a misread answer is worse than asking.

A complaint is linked to the case it is about: the case number it names, else the enterprise's
open case. Complaints are followed up like cases ("我的投诉处理得怎么样了", "查询 TS-…", answered
by the progress handler with :func:`follows_up` and :func:`find_complaint_numbers`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from bot.services import cases, complaints, enterprises
from handlers import consent, guard, signals
from handlers.base import Match, Outcome, TurnContext
from handlers.words import bare, words
from intents.extract import find_case_numbers
from intents.normalize import normalize

TEXT_FLOW = "complaint_text"
CONFIRM_FLOW = "complaint_confirm"
_BARE_REQUEST = words("complaint_bare")
DATA_FILE = Path(__file__).parent / "data" / "complaints.yaml"
# A complaint number as users type it (case-folded canonical text): TS-2026-000001, ts 2026 000001.
_COMPLAINT_NUMBER = re.compile(r"(?<![a-z0-9])ts[\s\-_‐‑‒–—―−.·/]*(\d{4})[\s\-_‐‑‒–—―−.·/]*(\d{6})(?!\d)")


def find_complaint_numbers(text: str) -> list[str]:
    """Complaint numbers in canonical form ``TS-2026-000001``, in order, without duplicates."""
    found: list[str] = []
    for match in _COMPLAINT_NUMBER.finditer(normalize(text).text):
        number = f"TS-{match.group(1)}-{match.group(2)}"
        if number not in found:
            found.append(number)
    return found


@lru_cache(maxsize=1)
def _follow_up_words() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], int]:
    data = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))
    return (tuple(bare(str(w)) for w in data["mention"]), tuple(bare(str(w)) for w in data["asks"]),
            tuple(bare(str(w)) for w in data["filing"]), int(data["max_chars"]))


def says_filing(ctx: TurnContext) -> bool:
    """The message files a complaint in so many words ("我要投诉…")."""
    word = signals.Said.of(ctx).bare
    return any(w in word for w in _follow_up_words()[2])


def follows_up(ctx: TurnContext) -> bool:
    """Asking how a complaint stands ("我的投诉处理得怎么样了", "投诉有结果了吗"), not filing one."""
    word = signals.Said.of(ctx).bare
    mention, asks, filing, longest = _follow_up_words()
    if len(word) > longest or not any(w in word for w in mention) or any(w in word for w in filing):
        return False
    return word.startswith(("我的投诉", "我们的投诉")) or any(w in word for w in asks)


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
        case = await self._about(ctx, text, enterprise.id)
        complaint = await complaints.file_complaint(
            ctx.session, identity=ctx.identity, enterprise=enterprise, text=text, case=case, now=ctx.now
        )
        if case is not None:
            cases.add_event(case, "complaint", "enterprise", ctx.now, complaint.number)
        return Outcome((ctx.say("complaint_filed", number=complaint.number,
                                case_number=case.number if case is not None else ""),))

    @staticmethod
    async def _about(ctx: TurnContext, text: str, enterprise_id: int) -> cases.ServiceCase | None:
        """The case a complaint is about: the one it names, else the enterprise's open case
        (the one most recently active)."""
        for number in find_case_numbers(text):
            case = await cases.case_of_enterprise(ctx.session, number, enterprise_id)
            if case is not None:
                return case
        open_cases = await cases.open_cases_of_enterprise(ctx.session, enterprise_id)
        return open_cases[0] if open_cases else None
