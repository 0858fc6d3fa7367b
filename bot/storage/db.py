"""The async engine and session factory, and the schema migrations that must run before use."""

from __future__ import annotations

import ast
import asyncio
import functools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

from bot import metrics
from bot.storage.outage import OUTAGE
from bot.storage.sqlite_inline import InlineConnection

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


SQLITE_BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the single writer and makes commits cheap (no fsync with
    synchronous=NORMAL; the checkpoint syncs); foreign keys are off by default in SQLite. Lock
    waits (the busy timeout) are handled by the inline connection, off the event loop."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _before_execute(*_: Any) -> None:
    clock = metrics.current()
    if clock is not None:
        clock.enter("database")


def _after_execute(*_: Any) -> None:
    clock = metrics.current()
    if clock is not None:
        clock.leave("database")


def _failed_execute(_context: Any) -> None:
    _after_execute()


def _measure(engine: AsyncEngine) -> None:
    """Statements count for the turn's "database" stage wherever they run (a handler's queries
    too): SQLAlchemy's cursor events bracket each one, on the task of the turn."""
    event.listen(engine.sync_engine, "before_cursor_execute", _before_execute)
    event.listen(engine.sync_engine, "after_cursor_execute", _after_execute)
    event.listen(engine.sync_engine, "handle_error", _failed_execute)


class TimedQueuePool(AsyncAdaptedQueuePool):
    """The PostgreSQL pool, timing how long each checkout waits for a connection (a pool too
    small for the load shows here first): ``qibot_db_pool_wait_seconds``."""

    # Log as SQLAlchemy's own pool (quiet below WARNING), not under bot.storage.db.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"

    def _do_get(self) -> Any:
        started = time.perf_counter()
        try:
            record: Any = super()._do_get()  # a _ConnectionRecord (its ``fresh`` is not in the interface)
        finally:
            metrics.POOL_WAIT.observe(time.perf_counter() - started)
        # The pre-ping (a round trip before every transaction) is for connections that may have
        # died while they sat in the pool: one that did a transaction less than PING_AFTER_IDLE
        # ago is as alive as a ping would prove, so it goes without (SQLAlchemy's "fresh"
        # connection, which it never pings). Under load, that is every checkout. Should the
        # server go away in that second, the statement fails as a disconnect instead, which
        # invalidates the pool and answers "busy" like a failed ping (bot/storage/outage.py).
        returned = record.info.get(_RETURNED_AT)
        if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE:
            record.fresh = True
        return record

    def _do_return_conn(self, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()
        super()._do_return_conn(record)


PING_AFTER_IDLE = 1.0  # seconds a pooled PostgreSQL connection may idle before it is pinged at checkout
_RETURNED_AT = "qibot_returned_at"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        database = parsed.database or ":memory:"
        # Statements run on the event loop; only lock waits go to a thread (see sqlite_inline).
        engine = create_async_engine(
            url, echo=echo,
            async_creator=partial(InlineConnection.connect, database, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS),
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        _measure(engine)
        return engine
    engine = create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10,
                                 poolclass=TimedQueuePool)
    _measure(engine)
    # A new connection after an outage is the sign it is over (the pre-ping replaced the dead ones).
    event.listen(engine.sync_engine, "connect", _connected)
    return engine


def _connected(_dbapi_connection: Any, _record: Any) -> None:
    OUTAGE.mark_up()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    from alembic.config import Config  # imported only to migrate: see upgrade

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_sync(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@functools.cache
def head_revisions() -> frozenset[str]:
    """The head revision(s) of the migration scripts, read from their module-level ``revision``
    and ``down_revision`` literals with :mod:`ast` (no import of the scripts or of Alembic).
    Read once per process: the scripts ship with the code, and parsing all of them costs
    ~15 ms, which every runtime start (and every test that starts one) would pay again."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            target: ast.expr
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                literal = ast.literal_eval(value)
                names = {literal} if isinstance(literal, str) else set(literal or ())
                (revisions if target.id == "revision" else parents).update(names)
    return frozenset(revisions - parents)


async def at_head(url: str) -> bool:
    """Whether the database's schema is already at the scripts' head: one ``SELECT`` on a
    throwaway connection. Any doubt (no version table, a missing database, an error) is
    ``False``, and Alembic then decides and reports as it always did."""
    heads = head_revisions()
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return bool(heads) and {str(row[0]) for row in rows} == heads
    except Exception:
        return False
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations; Alembic drives its own event loop, so it runs in a worker thread.

    A schema already at head (every worker's start in a deployment whose one-shot ``migrate``
    ran, and every restart) is recognised with one query, without importing Alembic: Alembic
    with Mako and Pygments adds ~12 MB to a process's resident memory (``bench/memory.py``),
    which a serving worker would then hold for nothing."""
    if revision == "head" and await at_head(url):
        return
    await asyncio.to_thread(upgrade_sync, url, revision)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with factory() as session, session.begin():
        yield session
