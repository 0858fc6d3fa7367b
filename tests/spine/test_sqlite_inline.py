"""The embedded SQLite runs statements on the event loop, but never waits for a lock there."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot.storage import db
from bot.storage.sqlite_inline import InlineConnection


@pytest.fixture
async def engine(tmp_path: Path):
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield engine
    await engine.dispose()


def _hold_write_lock(path: Path, seconds: float, locked: threading.Event) -> None:
    """Another writer (a second worker, a `qibot` command): holds the write lock for a while."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (v) VALUES ('other')")
    locked.set()
    threading.Event().wait(seconds)
    other.execute("COMMIT")
    other.close()


async def test_statements_run_on_the_event_loop_thread(engine) -> None:
    seen: list[int] = []

    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        raw.driver_connection._conn.create_function("whoami", 0, lambda: seen.append(threading.get_ident()) or 1)
        assert (await conn.execute(text("SELECT whoami()"))).scalar_one() == 1
    assert seen == [threading.get_ident()]  # no thread hop: the reason this driver exists


async def test_a_write_that_meets_another_writer_waits_off_the_loop_and_then_succeeds(engine, tmp_path) -> None:
    locked = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(tmp_path / "inline.db", 0.4, locked))
    holder.start()
    await asyncio.to_thread(locked.wait, 5)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(ticker())
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (v) VALUES ('mine')"))
    finally:
        beat.cancel()
        await asyncio.to_thread(holder.join)
    assert ticks >= 10  # the loop kept running for the ~0.4 s the write waited
    async with engine.connect() as conn:
        values = sorted((await conn.execute(text("SELECT v FROM t"))).scalars())
    assert values == ["mine", "other"]  # both writes kept


async def test_a_lock_held_past_the_busy_timeout_is_a_clear_error_and_the_connection_recovers(tmp_path) -> None:
    path = tmp_path / "short.db"
    sqlite3.connect(path).execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").connection.close()
    conn = await InlineConnection.connect(str(path), busy_timeout_ms=100)
    locked = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 0.6, locked))
    holder.start()
    await asyncio.to_thread(locked.wait, 5)
    cursor = conn.cursor()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await cursor.execute("INSERT INTO t (v) VALUES ('mine')")
    await conn.rollback()
    await asyncio.to_thread(holder.join)
    await cursor.execute("INSERT INTO t (v) VALUES ('retried')")
    await conn.commit()
    await cursor.execute("SELECT v FROM t ORDER BY id")
    assert [row[0] for row in await cursor.fetchall()] == ["other", "retried"]
    await conn.close()


async def test_sqlalchemy_reports_a_lock_timeout_as_its_operational_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 50)
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'e.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    locked = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(tmp_path / "e.db", 0.5, locked))
    holder.start()
    await asyncio.to_thread(locked.wait, 5)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (v) VALUES ('mine')"))
    finally:
        await asyncio.to_thread(holder.join)
    async with engine.begin() as conn:  # the pool's connection is usable again
        await conn.execute(text("INSERT INTO t (v) VALUES ('after')"))
    await engine.dispose()


async def test_a_cancelled_lock_wait_leaves_the_connection_usable(engine, tmp_path) -> None:
    locked = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(tmp_path / "inline.db", 0.4, locked))
    holder.start()
    await asyncio.to_thread(locked.wait, 5)

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (v) VALUES ('cancelled')"))
            await asyncio.sleep(10)  # never reached before the cancel if the insert waits

    loop = asyncio.get_running_loop()
    gaps: list[float] = []

    async def ticker() -> None:
        last = loop.time()
        while True:
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - last)
            last = loop.time()

    beat = asyncio.create_task(ticker())
    task = asyncio.create_task(write())
    await asyncio.sleep(0.1)  # the insert is now waiting for the lock on a thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(holder.join)
    beat.cancel()
    assert max(gaps) < 0.15  # the cancelled wait never blocked the loop (no rollback racing the thread)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('after')"))
    async with engine.connect() as conn:
        assert sorted((await conn.execute(text("SELECT v FROM t"))).scalars()) == ["after", "other"]


async def test_autocommit_isolation_works_through_the_inline_connection(engine) -> None:
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("INSERT INTO t (v) VALUES ('auto')"))
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT v FROM t"))).scalars().all() == ["auto"]
