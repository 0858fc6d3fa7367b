"""Named leases in the database: one holder at a time until the lease runs out.

Periodic jobs take the lease named after them for one interval: whichever worker takes it runs
the round, the others skip it, and a worker that dies just lets it expire, so the jobs run once
per interval across the cluster with no process being special. A table rather than a
PostgreSQL advisory lock, because the embedded SQLite deployment runs the same code; it needs no
session held for the interval either.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.dialect import insert_ignore
from bot.storage.models import ClusterLease


def holder_id() -> str:
    """Who holds a lease: readable for an operator (host and pid), unique across restarts."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def acquire(session: AsyncSession, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take the lease ``name`` until ``now + ttl``; False until the current one runs out, even
    for its own holder (a worker that ran the jobs does not run them again within the interval).
    Atomic on both databases: the insert loses to an existing row on its primary key, and the
    take-over is a conditional update of that row."""
    until = now + ttl
    if await insert_ignore(session, ClusterLease.__table__, {"name": name, "holder": holder, "expires_at": until},
                           ("name",), returning="name") is not None:
        return True
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(ClusterLease)
        .where(ClusterLease.name == name, ClusterLease.expires_at <= now)
        .values(holder=holder, expires_at=until)
    )
    return result.rowcount == 1


async def release(session: AsyncSession, name: str, holder: str) -> None:
    await session.execute(delete(ClusterLease).where(ClusterLease.name == name, ClusterLease.holder == holder))
