"""The nonce memory behind replay protection, on every store it can use: SQLite, PostgreSQL and
Redis (each skipped with the reason when missing), and several workers sharing one store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.replay import ReplayGuard, Seen
from bot.storage import db
from bot.storage.guards import SeenNonce
from bot.storage.types import utcnow
from tests.helpers.services import REDIS_URL, require_redis


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = database_url
    await db.upgrade(url)
    engine = db.create_engine(url)
    yield db.session_factory(engine)
    await engine.dispose()



async def _exercise(guard: ReplayGuard) -> None:
    nonce = uuid.uuid4().hex
    assert await guard.check("wechat", "sig", "1765000000", nonce, b"<xml>a</xml>") is Seen.NEW
    assert await guard.check("wechat", "sig", "1765000000", nonce, b"<xml>a</xml>") is Seen.RETRY
    assert await guard.check("wechat", "sig", "1765000000", nonce, b"<xml>b</xml>") is Seen.REPLAY
    assert await guard.check("wecom", "sig", "1765000000", nonce, b"<xml>b</xml>") is Seen.NEW  # per channel
    assert await guard.check("wechat", "sig", "1765000000", nonce + "x", b"<xml>b</xml>") is Seen.NEW


async def test_database_guard(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _exercise(ReplayGuard(sessions, window=300))


async def test_an_expired_nonce_is_forgotten(sessions: async_sessionmaker[AsyncSession]) -> None:
    guard = ReplayGuard(sessions, window=300)
    assert await guard.check("wechat", "s", "1", "n", b"a") is Seen.NEW
    async with db.transaction(sessions) as session:
        await session.execute(update(SeenNonce).values(expires_at=utcnow().replace(year=2000)))
    assert await guard.check("wechat", "s", "1", "n", b"b") is Seen.NEW


async def test_two_workers_racing_on_one_nonce_admit_one_body(sessions: async_sessionmaker[AsyncSession]) -> None:
    workers = [ReplayGuard(sessions, window=300) for _ in range(4)]
    bodies = [f"<xml>{i}</xml>".encode() for i in range(4)]
    seen = await asyncio.gather(*(w.check("wechat", "s", "1", "race", b) for w, b in zip(workers, bodies, strict=True)))
    assert seen.count(Seen.NEW) == 1 and seen.count(Seen.REPLAY) == 3


async def test_redis_guard(sessions: async_sessionmaker[AsyncSession]) -> None:
    await require_redis()
    guard = ReplayGuard(sessions, window=300, redis_url=REDIS_URL, redis_prefix=f"qibot-test-{uuid.uuid4().hex[:8]}")
    try:
        assert guard.backend == "redis"
        await _exercise(guard)
    finally:
        await guard.close()


async def test_a_redis_that_does_not_answer_falls_back_to_the_database(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    guard = ReplayGuard(sessions, window=300, redis_url="redis://127.0.0.1:1/0")
    try:
        await _exercise(guard)
    finally:
        await guard.close()


def test_the_memory_lasts_as_long_as_the_timestamp_passes_the_window() -> None:
    guard = ReplayGuard(None, window=300, clock=lambda: 1_000_000.0)  # type: ignore[arg-type]
    assert guard._ttl("1000000") >= 300
    assert guard._ttl("1000200") >= 500  # ahead of our clock: valid until its own time + window
    assert guard._ttl("999800") >= 300
