"""Matching a demand to people and institutions (服务对接: 精准匹配资源).

A new case goes to the commissioner who is best by, in order: skill in the case's domain,
being on duty, having room (below their capacity, ``max_open_cases``; no capacity means no
limit), current open load (a commissioner outside the enterprise's district, that of their site
or one of the districts they serve, counts as carrying two more cases, so a local one is
preferred unless much busier), and finally the one idle the longest. So a commissioner at
capacity gets a new case only when every skilled one on duty is full too (the case is still
assigned to someone rather than left unowned). Institutions and experts are suggested to the
commissioner from the active entries of the resource library: in-domain, same district first, best satisfaction first.
Suspended and retired entries (the exit mechanism) are never suggested.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Commissioner, Expert, Institution, ServiceCase, Site

OPEN_STATUSES = ("new", "accepted")
DISTRICT_PENALTY = 2
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


async def open_load(session: AsyncSession) -> dict[int, int]:
    """Open cases per commissioner: owned ones, plus assigned-but-unaccepted ones."""
    holder = func.coalesce(ServiceCase.owner_id, ServiceCase.assignee_id)
    rows = await session.execute(
        select(holder, func.count()).where(ServiceCase.status.in_(OPEN_STATUSES), holder.is_not(None)).group_by(holder)
    )
    return {int(cid): int(n) for cid, n in rows.all()}


async def choose_commissioner(
    session: AsyncSession, domain: str | None, district: str | None, *, on_duty_only: bool = False
) -> Commissioner | None:
    stmt = select(Commissioner, Site.district).outerjoin(Site, Commissioner.site_id == Site.id).where(
        Commissioner.active.is_(True)
    )
    if on_duty_only:
        stmt = stmt.where(Commissioner.on_duty.is_(True))
    candidates = (await session.execute(stmt)).all()
    if not candidates:
        return None
    load = await open_load(session)

    def rank(row: Any) -> tuple[int, int, int, int, datetime, int]:
        commissioner, site_district = row
        skilled = domain is not None and domain in (commissioner.domains or [])
        served = [d.removesuffix("区") for d in (site_district, *(commissioner.districts or ())) if d]
        local = district is not None and any(district.startswith(d) for d in served)
        held = load.get(commissioner.id, 0)
        full = commissioner.max_open_cases is not None and held >= commissioner.max_open_cases
        return (
            0 if skilled else 1,
            0 if commissioner.on_duty else 1,
            1 if full else 0,
            held + (0 if local else DISTRICT_PENALTY),
            commissioner.last_assigned_at or _NEVER,
            commissioner.id,
        )

    return min(candidates, key=rank)[0]


def _satisfaction(total: int, count: int) -> float:
    return total / count if count else 0.0


async def suggest_resources(
    session: AsyncSession, domain: str, district: str | None, limit: int = 3
) -> dict[str, list[dict[str, Any]]]:
    """Suggested institutions and experts for the commissioner, as a snapshot stored on the case."""
    institutions = (
        await session.execute(select(Institution).where(Institution.status == "active"))
    ).scalars().all()
    experts = (await session.execute(select(Expert).where(Expert.status == "active"))).scalars().all()

    def fits(domains: list[Any]) -> bool:
        return domain in (domains or [])

    ranked_institutions = sorted(
        (i for i in institutions if fits(i.domains)),
        key=lambda i: (i.district != district, -_satisfaction(i.satisfaction_sum, i.satisfaction_count), i.id),
    )[:limit]
    ranked_experts = sorted(
        (e for e in experts if fits(e.domains)),
        key=lambda e: (-_satisfaction(e.satisfaction_sum, e.satisfaction_count), e.id),
    )[:limit]
    return {
        "institutions": [{"id": i.id, "name": i.name, "capabilities": list(i.capabilities or [])[:5]}
                         for i in ranked_institutions],
        "experts": [{"id": e.id, "name": e.name, "title": e.title} for e in ranked_experts],
    }


async def find_commissioner(session: AsyncSession, handle_or_id: str) -> Commissioner | None:
    condition = Commissioner.handle == handle_or_id
    if handle_or_id.isascii() and handle_or_id.isdigit():  # "²".isdigit() is True, int("²") raises
        condition = or_(condition, Commissioner.id == int(handle_or_id))
    return (await session.execute(select(Commissioner).where(condition))).scalar_one_or_none()


async def supervisor_for(session: AsyncSession, commissioner: Commissioner | None) -> Commissioner | None:
    """The supervisor of the commissioner's site, or any active supervisor."""
    stmt = select(Commissioner).where(Commissioner.is_supervisor.is_(True), Commissioner.active.is_(True))
    supervisors = (await session.execute(stmt.order_by(Commissioner.id))).scalars().all()
    if commissioner is not None:
        for supervisor in supervisors:
            if supervisor.site_id == commissioner.site_id and supervisor.id != commissioner.id:
                return supervisor
    return supervisors[0] if supervisors else None
