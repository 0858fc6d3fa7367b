"""An SQLite connection for SQLAlchemy's aiosqlite dialect that runs statements on the event loop.

Why: aiosqlite runs every call (cursor, execute, fetch, close, commit) on its own thread and
wakes the event loop for each result. A dialogue turn makes about 60 such calls, and each round
trip costs far more than the statement: an empty transaction took about 1 ms through aiosqlite
and about 0.08 ms through SQLAlchemy on plain sqlite3 (`bench/engine.py`). SQLite in WAL mode
answers from the page cache in microseconds and its commits do not fsync (synchronous=NORMAL),
so running a statement directly is cheaper than handing it to a thread.

The one thing that must never run on the event loop is a wait for a lock held by another
connection (another worker process, a `qibot` command, a second connection of this process).
So the connection keeps SQLite's busy timeout at zero: a statement that finds the database
locked fails at once with SQLITE_BUSY before doing anything, and is then retried on a worker
thread with the real busy timeout, exactly as aiosqlite would have run it. Readers never meet a
lock in WAL mode; a writer meets one only when another connection is writing.

It speaks the part of aiosqlite's interface that SQLAlchemy's adapter uses (`async_creator`),
so SQLAlchemy, its dialect and its pool are unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

_T = TypeVar("_T")
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _is_lock_wait(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _BUSY_CODES


class InlineConnection:
    """One sqlite3 connection, used by one SQLAlchemy connection at a time (the pool sees to it)."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout_ms: int) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._busy_timeout_ms = busy_timeout_ms
        self._tx = _InlineQueue()  # SQLAlchemy's isolation-level setter queues work on aiosqlite's `_tx`

    @classmethod
    async def connect(cls, database: str, *, busy_timeout_ms: int = 5000) -> InlineConnection:
        # check_same_thread=False: a statement that must wait for a lock runs on a worker thread.
        connection = sqlite3.connect(database, check_same_thread=False, timeout=0)
        connection.execute("PRAGMA busy_timeout=0")
        return cls(connection, busy_timeout_ms)

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    async def run(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run a sqlite3 call here; if it would wait for a lock, wait on a thread instead."""
        try:
            return function(*args)
        except sqlite3.OperationalError as error:
            if not _is_lock_wait(error):
                raise
        waiting = asyncio.ensure_future(asyncio.to_thread(self._waiting, function, *args))
        try:
            return await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The statement is still running on the thread: nobody may use this connection (a
            # rollback on the loop would block it until the wait ends) before it is done.
            await asyncio.wait({waiting})
            raise

    def _waiting(self, function: Callable[..., _T], *args: Any) -> _T:
        connection = self._conn
        connection.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        try:
            return function(*args)
        finally:
            connection.execute("PRAGMA busy_timeout=0")

    # --- the aiosqlite.Connection surface SQLAlchemy uses ------------------------------------

    def cursor(self) -> InlineCursor:
        return InlineCursor(self, self._conn.cursor())

    async def commit(self) -> None:
        await self.run(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()  # releasing locks never waits

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        # sqlite3 also takes "" (typeshed lists only the named levels); SQLAlchemy sets "" or None
        self._conn.isolation_level = value  # type: ignore[assignment]


class InlineCursor:
    def __init__(self, owner: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._owner = owner
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        await self._owner.run(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        await self._owner.run(self._cursor.executemany, sql, parameters)
        return self

    # Rows are stepped here too: a SELECT takes its read lock in execute(), and WAL readers never wait.
    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _InlineQueue:
    """Stands in for aiosqlite's work queue: runs the queued call now and settles its future."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:  # handed to the waiting caller, as aiosqlite does
            if future is not None:
                future.set_exception(error)
        else:
            if future is not None:
                future.set_result(result)
