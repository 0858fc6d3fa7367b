"""Satisfaction ratings (服务反馈): asked after every resolve, reminded once, fed into the
commissioner's, institution's and expert's records; low ratings open a supervisor follow-up."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.services import archive, followups, matching
from bot.services.cases import add_event, notify_commissioner, rating_choices, tell_enterprise
from bot.services.policy import ServicePolicy
from bot.storage.models import Commissioner, Expert, Institution, Rating, ServiceCase
from bot.texts import notifications

LOW_RATING = 2  # 不满意 and 非常不满意: the bad ratings (差评) of the five national levels


@lru_cache(maxsize=1)
def _default_policy() -> ServicePolicy:
    return ServicePolicy()


async def awaiting_rating(session: AsyncSession, enterprise_id: int | None) -> ServiceCase | None:
    """The enterprise's most recently resolved case whose current round is not rated yet."""
    if enterprise_id is None:
        return None
    cases = (
        await session.execute(
            select(ServiceCase)
            .where(ServiceCase.enterprise_id == enterprise_id, ServiceCase.status == "resolved")
            .options(selectinload(ServiceCase.events), selectinload(ServiceCase.owner))
            .order_by(ServiceCase.resolved_at.desc(), ServiceCase.id.desc())
        )
    ).scalars().all()
    for case in cases:
        rated = await session.scalar(
            select(Rating.id).where(Rating.case_id == case.id, Rating.round == case.rating_round)
        )
        if rated is None:
            return case
    return None


async def record_rating(
    session: AsyncSession, case: ServiceCase, score: int, now: datetime, retention_years: int = 3,
    policy: ServicePolicy | None = None,
) -> Rating:
    """Store the score, credit it, open the tracked follow-up of a bad one (好差评), then close
    and archive the case."""
    if not 1 <= score <= 5:
        raise ValueError("score must be 1-5")
    rating = Rating(case_id=case.id, round=case.rating_round, score=score, commissioner_id=case.owner_id,
                    created_at=now)
    session.add(rating)
    owner = case.owner
    if owner is not None:
        owner.satisfaction_sum += score
        owner.satisfaction_count += 1
    served = (case.suggestions or {}).get("served", {})
    rated: tuple[tuple[type[Institution] | type[Expert], str], ...] = (
        (Institution, "institution_id"), (Expert, "expert_id"),
    )
    for model, key in rated:
        if served.get(key):
            entity: Institution | Expert | None = await session.get(model, served[key])
            if entity is not None:
                entity.satisfaction_sum += score
                entity.satisfaction_count += 1
    add_event(case, "rated", "enterprise", now, str(score), score=score, round=case.rating_round)
    if score <= LOW_RATING:
        rules = policy or _default_policy()
        await session.flush()
        followup = await followups.open_followup(session, case, rating, now, rules.calendar,
                                                 rules.followup_working_days)
        due = f"{followup.due_at.astimezone(rules.calendar.tz):%Y-%m-%d %H:%M}"
        await _low_rating_followup(session, case, score, None, now, due)
    case.status, case.closed_at = "closed", now
    add_event(case, "closed", "system", now, "评价完成")
    await session.flush()
    await archive.archive_case(session, case, now, retention_years)
    return rating


async def _low_rating_followup(
    session: AsyncSession, case: ServiceCase, score: int, comment: str | None, now: datetime, due: str = ""
) -> None:
    """Open the supervisor's follow-up for a low score (once per rating round), or pass on the
    comment that explains it."""
    supervisor = await matching.supervisor_for(session, case.owner)
    if comment is None:
        add_event(case, "low_rating_followup", "system", now, f"{score} 分，转主管回访",
                  supervisor=supervisor.handle if supervisor else None)
    if supervisor is None:
        return
    text = notifications().render(
        "low_rating_followup", number=case.number, score=score, comment=comment,
        owner=case.owner.name if case.owner else "无", level=followups.scale().level(score), due=due or "期限内",
    )
    kind, key = ("low_rating_followup", f"low-rating:{case.number}:{case.rating_round}") if comment is None \
        else ("low_rating_comment", None)
    await notify_commissioner(session, supervisor, kind, text, now, case_number=case.number, dedup_key=key)


async def add_comment(session: AsyncSession, rating_id: int, comment: str, now: datetime) -> None:
    rating = await session.get(Rating, rating_id)
    if rating is None:
        return
    rating.comment = comment[:2000]
    case = (
        await session.execute(
            select(ServiceCase).where(ServiceCase.id == rating.case_id).options(
                selectinload(ServiceCase.events), selectinload(ServiceCase.owner))
        )
    ).scalar_one()
    add_event(case, "rating_comment", "enterprise", now, comment[:2000])
    if rating.score <= LOW_RATING:
        await _low_rating_followup(session, case, rating.score, comment, now)
    await archive.archive_case(session, case, now)


async def send_reminders(session: AsyncSession, now: datetime, after: timedelta = timedelta(hours=24)) -> int:
    """One reminder per rating round, ``after`` the request, if still unrated."""
    cases = (
        await session.execute(
            select(ServiceCase)
            .where(ServiceCase.status == "resolved", ServiceCase.rating_reminded_at.is_(None),
                   ServiceCase.rating_requested_at <= now - after)
            .options(selectinload(ServiceCase.events))
        )
    ).scalars().all()
    for case in cases:
        case.rating_reminded_at = now
        add_event(case, "rating_reminded", "system", now)
        await tell_enterprise(session, case, "rating_reminder", now, "system",
                               dedup_key=f"rating-reminder:{case.number}:{case.rating_round}",
                               choices=rating_choices())
    return len(cases)


async def close_unrated(
    session: AsyncSession, now: datetime, after: timedelta = timedelta(days=7), retention_years: int = 3
) -> int:
    """Resolved cases nobody rated within ``after`` are closed and archived without a rating."""
    cases = (
        await session.execute(
            select(ServiceCase)
            .where(ServiceCase.status == "resolved", ServiceCase.rating_requested_at <= now - after)
            .options(selectinload(ServiceCase.events), selectinload(ServiceCase.owner))
        )
    ).scalars().all()
    for case in cases:
        case.status, case.closed_at = "closed", now
        add_event(case, "closed", "system", now, "未评价，自动归档")
        await tell_enterprise(session, case, "enterprise_closed_without_rating", now, "system")
        await session.flush()
        await archive.archive_case(session, case, now, retention_years)
    return len(cases)


def satisfaction(commissioner: Commissioner) -> float | None:
    if not commissioner.satisfaction_count:
        return None
    return commissioner.satisfaction_sum / commissioner.satisfaction_count
