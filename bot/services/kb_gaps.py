"""The gap log: questions the knowledge base could not answer, counted for the curators
(``qibot kb gaps``). Apart from :mod:`bot.services.knowledge`, which needs no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.dialect import upsert_increment
from bot.storage.models import KbGap
from intents.normalize import normalize

GAP_TEXT_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Gap:
    id: int
    text: str
    count: int
    last_seen: datetime


async def log_gap(session: AsyncSession, text: str, now: datetime) -> None:
    """Count an unanswered question under its normalised form, for the curators' gap list. A
    gap already turned into an entry in the console that is asked and missed again is open
    again: the entry did not cover it."""
    key = normalize(text).text[:GAP_TEXT_LIMIT]
    if not key:
        return
    await upsert_increment(
        session,
        KbGap.__table__,
        {"normalized": key, "sample": text[:2000], "count": 1, "first_seen": now, "last_seen": now},
        ("normalized",),
        "count",
        {"last_seen": now, "handled_at": None, "handled_by": None, "handled_entry": None},
    )


async def gaps(session: AsyncSession, limit: int = 50) -> list[Gap]:
    """The open gaps, most asked first (those turned into an entry are left out)."""
    rows = await session.execute(
        select(KbGap).where(KbGap.handled_at.is_(None)).order_by(KbGap.count.desc(), KbGap.last_seen.desc())
        .limit(limit)
    )
    return [Gap(row.id, row.sample, row.count, row.last_seen) for row in rows.scalars()]


__all__ = ["GAP_TEXT_LIMIT", "Gap", "gaps", "log_gap"]
