"""Case and complaint numbers (``QI-2026-000123``, ``TS-2026-000007``), unique under concurrency.

The counter row for (series, year) is incremented with a single ``UPDATE … RETURNING``, which
takes a row lock on PostgreSQL and the database write lock on SQLite, so two concurrent intakes
can never draw the same number.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.dialect import insert_ignore
from bot.storage.models import CaseCounter

CASE_SERIES = "QI"
COMPLAINT_SERIES = "TS"


async def next_number(session: AsyncSession, series: str, year: int) -> str:
    table = CaseCounter.__table__
    await insert_ignore(session, table, {"series": series, "year": year, "last": 0}, ("series", "year"),
                        returning="series")
    result = await session.execute(
        update(table)
        .where(table.c.series == series, table.c.year == year)
        .values(last=table.c.last + 1)
        .returning(table.c.last)
    )
    return f"{series}-{year}-{result.scalar_one():06d}"
