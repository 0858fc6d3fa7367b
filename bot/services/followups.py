"""The 好差评 loop: every bad rating (不满意 / 非常不满意) is followed up (国办发〔2019〕51号).

A follow-up goes call back (回访) → verified (核实) → handled: fixed at once, registered for
rectification with a deadline in working days, explained, or appealed as a mistaken rating →
replied to the enterprise (through the outbox, on the enterprise's channel) → rated by the
enterprise. Every step keeps who and when; the reply is due ``followup_working_days`` working
days after the rating, and a follow-up replied by then counts as "followed up in time".

No HTTP here: the console pages, tests and any other front end call these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.services.calendar import WorkingCalendar
from bot.services.cases import add_event, tell_enterprise
from bot.storage.models import Rating, RatingFollowup, ServiceCase
from intents import yamlfile

RATINGS_FILE = Path(__file__).resolve().parent.parent / "data" / "ratings.yaml"
STEPS = ("open", "called", "verified", "handled", "replied", "rated")
OUTCOMES = ("fixed", "rectify", "explained", "appealed")
OPEN = ("open", "called", "verified", "handled")  # not yet replied to the enterprise


class FollowupError(Exception):
    """A step that is not allowed now; the message (Chinese, for staff) says why."""


@dataclass(frozen=True, slots=True)
class RatingScale:
    levels: dict[int, str]
    bad_at_most: int
    status: dict[str, str]
    outcomes: dict[str, str]

    def level(self, score: int | None) -> str:
        return self.levels.get(score or 0, "")


@lru_cache(maxsize=1)
def scale() -> RatingScale:
    """The five levels, the follow-up states and outcomes, from ``bot/data/ratings.yaml``."""
    data: dict[str, Any] = yamlfile.read(RATINGS_FILE)
    return RatingScale(
        levels={int(k): str(v) for k, v in data["levels"].items()},
        bad_at_most=int(data["bad_at_most"]),
        status={str(k): str(v) for k, v in data["followup_status"].items()},
        outcomes={str(k): str(v) for k, v in data["outcomes"].items()},
    )


def is_bad(score: int) -> bool:
    return score <= scale().bad_at_most


async def open_followup(
    session: AsyncSession, case: ServiceCase, rating: Rating, now: datetime, calendar: WorkingCalendar, days: int
) -> RatingFollowup:
    """The tracked follow-up of one bad rating (one per rating), due in ``days`` working days."""
    existing = (
        await session.execute(select(RatingFollowup).where(RatingFollowup.rating_id == rating.id))
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    followup = RatingFollowup(rating_id=rating.id, case_id=case.id, score=rating.score, status="open",
                              due_at=calendar.add_working_days(now, days), created_at=now)
    session.add(followup)
    await session.flush()
    return followup


async def get(session: AsyncSession, followup_id: int) -> RatingFollowup | None:
    return (
        await session.execute(
            select(RatingFollowup).where(RatingFollowup.id == followup_id)
            .options(selectinload(RatingFollowup.case).selectinload(ServiceCase.events),
                     selectinload(RatingFollowup.case).selectinload(ServiceCase.owner),
                     selectinload(RatingFollowup.case).selectinload(ServiceCase.enterprise))
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def require(session: AsyncSession, followup_id: int) -> RatingFollowup:
    followup = await get(session, followup_id)
    if followup is None:
        raise FollowupError(f"没有编号为 {followup_id} 的回访")
    return followup


def _need(followup: RatingFollowup, *states: str) -> None:
    if followup.status not in states:
        now = scale().status.get(followup.status, followup.status)
        raise FollowupError(f"该回访当前为“{now}”，不能进行这一步")


def _text(note: str, what: str, limit: int = 2000) -> str:
    note = note.strip()
    if not note:
        raise FollowupError(f"请填写{what}")
    return note[:limit]


async def record_call(session: AsyncSession, followup: RatingFollowup, actor: str, note: str, now: datetime) -> None:
    """The call back to the enterprise (回访): what they said."""
    _need(followup, "open")
    followup.called_at, followup.called_by, followup.call_note = now, actor, _text(note, "回访记录")
    followup.status = "called"
    add_event(followup.case, "followup_called", actor, now, followup.call_note, followup=followup.id)


async def record_verified(session: AsyncSession, followup: RatingFollowup, actor: str, note: str,
                          now: datetime) -> None:
    """The facts checked against the case record (核实)."""
    _need(followup, "called")
    followup.verified_at, followup.verified_by, followup.verify_note = now, actor, _text(note, "核实情况")
    followup.status = "verified"
    add_event(followup.case, "followup_verified", actor, now, followup.verify_note, followup=followup.id)


async def record_outcome(
    session: AsyncSession, followup: RatingFollowup, actor: str, outcome: str, note: str, now: datetime,
    calendar: WorkingCalendar, rectify_days: int,
) -> None:
    """Fixed, registered for rectification (due ``rectify_days`` working days from now),
    explained, or appealed as mistaken."""
    _need(followup, "verified")
    if outcome not in OUTCOMES:
        raise FollowupError("处理方式须为：当场整改、登记整改、解释说明或申诉")
    if outcome == "rectify" and not 1 <= rectify_days <= 60:
        raise FollowupError("整改期限须为 1～60 个工作日")
    text = _text(note, "处理说明")
    followup.outcome, followup.outcome_at, followup.outcome_by = outcome, now, actor
    followup.outcome_note = text
    followup.rectify_due_at = calendar.add_working_days(now, rectify_days) if outcome == "rectify" else None
    followup.status = "handled"
    add_event(followup.case, "followup_handled", actor, now, followup.outcome_note, followup=followup.id,
              outcome=outcome)


async def reply(session: AsyncSession, followup: RatingFollowup, actor: str, text: str, now: datetime,
                calendar: WorkingCalendar) -> None:
    """The answer to the enterprise, sent on its channel through the outbox; it asks the
    enterprise to rate the follow-up."""
    _need(followup, "handled")
    followup.replied_at, followup.replied_by, followup.reply_text = now, actor, _text(text, "答复内容", 500)
    followup.status = "replied"
    add_event(followup.case, "followup_replied", actor, now, followup.reply_text, followup=followup.id)
    rectify_due = (f"{followup.rectify_due_at.astimezone(calendar.tz):%Y-%m-%d}"
                   if followup.rectify_due_at else "")
    await tell_enterprise(session, followup.case, "followup_reply", now, actor,
                          dedup_key=f"followup-reply:{followup.id}",
                          outcome=scale().outcomes[followup.outcome or "explained"],
                          text=followup.reply_text, rectify_due=rectify_due,
                          choices=("5", "4", "3", "2", "1"))


async def awaiting_enterprise_rating(session: AsyncSession, enterprise_id: int | None) -> RatingFollowup | None:
    """The enterprise's follow-up replied to and not rated yet (the latest)."""
    if enterprise_id is None:
        return None
    return (
        await session.execute(
            select(RatingFollowup).join(ServiceCase, ServiceCase.id == RatingFollowup.case_id)
            .where(ServiceCase.enterprise_id == enterprise_id, RatingFollowup.status == "replied")
            .options(selectinload(RatingFollowup.case).selectinload(ServiceCase.events))
            .order_by(RatingFollowup.replied_at.desc(), RatingFollowup.id.desc()).limit(1)
        )
    ).scalar_one_or_none()


async def record_enterprise_rating(session: AsyncSession, followup: RatingFollowup, score: int,
                                   now: datetime) -> None:
    """The enterprise's rating of how its bad rating was handled; closes the loop."""
    if not 1 <= score <= 5:
        raise ValueError("score must be 1-5")
    _need(followup, "replied")
    followup.enterprise_score, followup.enterprise_rated_at, followup.status = score, now, "rated"
    add_event(followup.case, "followup_rated", "enterprise", now, str(score), followup=followup.id, score=score)


async def listing(session: AsyncSession, *, state: str = "open", limit: int = 200) -> Sequence[RatingFollowup]:
    """Follow-ups to work (``open``: not replied yet, oldest due first), or all (``all``)."""
    stmt = select(RatingFollowup).options(selectinload(RatingFollowup.case).selectinload(ServiceCase.owner))
    if state == "open":
        stmt = stmt.where(RatingFollowup.status.in_(OPEN)).order_by(RatingFollowup.due_at, RatingFollowup.id)
    else:
        stmt = stmt.order_by(RatingFollowup.created_at.desc(), RatingFollowup.id.desc())
    return (await session.execute(stmt.limit(limit))).scalars().all()


def is_overdue(followup: RatingFollowup, now: datetime) -> bool:
    """Not answered by its due time (a late reply stays "not in time" but is no longer overdue)."""
    return followup.replied_at is None and now > followup.due_at


def in_time(followup: RatingFollowup) -> bool:
    return followup.replied_at is not None and followup.replied_at <= followup.due_at
