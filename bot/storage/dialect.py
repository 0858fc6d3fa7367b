"""The few statements whose SQL differs between SQLite and PostgreSQL, behind one function each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def insert_for(dialect: str, table: Table) -> Any:
    """An INSERT with ``on_conflict_do_nothing``/``do_update`` for the named dialect."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def _insert(session: AsyncSession, table: Table) -> Any:
    return insert_for(session.get_bind().dialect.name, table)


@lru_cache(maxsize=64)
def _insert_ignore_statement(
    dialect: str, table: Table, columns: tuple[str, ...], conflict: tuple[str, ...], returning: str
) -> Any:
    """Built once per shape and run with parameters: building a statement costs more than
    running it (message ids are claimed this way on every turn), and a prebuilt statement
    also keeps its SQLAlchemy cache key."""
    return (
        insert_for(dialect, table)
        .values({name: bindparam(name) for name in columns})
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(table.c[returning])
    )


async def insert_ignore(
    session: AsyncSession | AsyncConnection,
    table: Table,
    values: Mapping[str, Any],
    conflict: Sequence[str],
    returning: str = "id",
) -> Any | None:
    """Insert a row unless one with the same key exists; return the new row's ``returning``
    column (its id by default), or None on conflict.

    Claiming a key this way is atomic in the database, so two concurrent deliveries of the same
    message cannot both win, and no failed INSERT poisons a PostgreSQL transaction. Runs in an
    ORM session or, where no ORM object is needed, on a plain connection (cheaper).
    """
    dialect = session.dialect if isinstance(session, AsyncConnection) else session.get_bind().dialect
    stmt = _insert_ignore_statement(dialect.name, table, tuple(sorted(values)), tuple(conflict), returning)
    result = await session.execute(stmt, dict(values))
    return result.scalar_one_or_none()


async def upsert_increment(
    session: AsyncSession,
    table: Table,
    values: Mapping[str, Any],
    conflict: Sequence[str],
    increment: str,
    update: Mapping[str, Any],
    amount: int = 1,
) -> None:
    """Insert a row, or add ``amount`` to ``increment`` and set ``update`` on the existing row."""
    stmt = _insert(session, table).values(**values)
    set_ = {increment: table.c[increment] + amount, **update}
    await session.execute(stmt.on_conflict_do_update(index_elements=list(conflict), set_=set_))
