"""PostgreSQL databases for tests: a new empty one, or a migrated one from a per-process pool.

Creating a database, migrating it to head and dropping it cost about 2 s of this machine's time
per test, and a hundred tests on PostgreSQL spent more in that than in what they test. A pooled
database is migrated once per test process (pytest-xdist: per worker) and emptied between tests
instead: every table emptied, the migrations' own rows and sequence values put back as the
migrations left them (``alembic_version`` kept), and any connection a test left open terminated,
so each test still starts from a database nobody used.
Tests about migrations themselves take :func:`empty_database`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import queue
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.helpers.services import POSTGRES_ADMIN_URL, skip_or_fail

_T = TypeVar("_T")
_ADMIN_DSN = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
_BASE = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]

_free: list[str] = []  # names of migrated, emptied databases this process may hand out
_made: list[str] = []  # every database this process created, dropped at its exit
# Rows the migrations themselves insert (e.g. the knowledge base's one-row version counter),
# read once after migrating and put back by every reset: {table: (columns, rows)}.
_seeds: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
_sequences: dict[str, int | None] = {}  # each sequence's last value after migrating (None: unused)
_lock = threading.Lock()


def _run(work: Callable[[Any], Awaitable[_T]], dsn: str = _ADMIN_DSN) -> _T:
    """One asyncpg connection for ``work``, on a loop of its own (fixtures here are synchronous)."""
    import asyncpg

    async def go() -> _T:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def url_of(name: str) -> str:
    return f"{_BASE}/{name}"


def _create(prefix: str) -> str:
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        _run(lambda conn: conn.execute(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        skip_or_fail(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({type(exc).__name__}); "
                     "start it or set TEST_POSTGRES_URL")
    return name


def drop(name: str) -> None:
    _run(lambda conn: conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


_to_drop: queue.Queue[str] = queue.Queue()
_dropper: threading.Thread | None = None


def drop_later(name: str) -> None:
    """Drop ``name`` in a background thread: DROP DATABASE waits for the server's checkpoint
    (0.3-1 s here), which no test needs to wait for. The process waits for its drops at exit."""
    global _dropper
    with _lock:
        if _dropper is None:
            _dropper = threading.Thread(target=_drop_queued, name="postgres-dropper", daemon=True)
            _dropper.start()
            atexit.register(_to_drop.join)
    _to_drop.put(name)


def _drop_queued() -> None:
    while True:
        name = _to_drop.get()
        try:
            with contextlib.suppress(Exception):  # a server gone at exit: nothing else to do
                drop(name)
        finally:
            _to_drop.task_done()


def empty_database() -> str:
    """A new database with no schema at all (the caller drops it with :func:`drop`)."""
    return _create("qibot_test")


def migrated_database() -> str:
    """A database at the head migration with no rows: from the pool, else made now."""
    with _lock:
        if _free:
            return _free.pop()
    from bot.storage import db

    name = _create("qibot_pool")
    with _lock:
        if not _made:
            atexit.register(_drop_all)
        _made.append(name)
    db.upgrade_sync(url_of(name))
    seeds, sequences = _run(_read_seeds, _dsn_of(name))
    with _lock:
        _seeds.update(seeds)
        _sequences.update(sequences)
    return name


def _dsn_of(name: str) -> str:
    return f"{_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


async def _user_tables(conn: Any) -> list[str]:
    return [r["relname"] for r in await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version'"
    )]


async def _read_seeds(
    conn: Any,
) -> tuple[dict[str, tuple[list[str], list[tuple[Any, ...]]]], dict[str, int | None]]:
    seeds = {}
    for table in await _user_tables(conn):
        rows = await conn.fetch(f'SELECT * FROM "{table}"')
        if rows:
            seeds[table] = (list(rows[0].keys()), [tuple(r.values()) for r in rows])
    sequences = {r["sequencename"]: r["last_value"] for r in await conn.fetch(
        "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")}
    return seeds, sequences


def give_back(name: str) -> None:
    """Empty a pooled database and put it back; one that cannot be emptied is dropped instead."""
    try:
        _run(_empty_everything, _dsn_of(name))
    except Exception:
        drop(name)
        with _lock:
            _made.remove(name)
        raise
    with _lock:
        _free.append(name)


async def _empty_everything(conn: Any) -> None:
    """Rows out of every table but alembic_version, sequences and the migrations' own rows as the
    migrations left them. ``replica`` mode skips triggers, so foreign keys impose no order and the audit
    log's append-only rule (a trigger) does not refuse the reset; it stays in force for the tests
    themselves."""
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    tables = await _user_tables(conn)
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        for table in tables:
            await conn.execute(f'DELETE FROM "{table}"')
        for sequence, last in _sequences.items():
            if last is None:
                await conn.execute(f'ALTER SEQUENCE "{sequence}" RESTART')
            else:
                await conn.execute("SELECT setval($1::regclass, $2, true)", f'"{sequence}"', last)
        for table, (columns, rows) in _seeds.items():
            await conn.copy_records_to_table(table, records=rows, columns=columns)


def _drop_all() -> None:
    for name in list(_made):
        with contextlib.suppress(Exception):  # the server may be gone at exit; nothing else to do
            drop(name)
