"""Telling a database outage from a bug, and logging it once per transition.

When PostgreSQL is down (restarting, failing over, the network cut) every request that needs it
fails the same way. Those failures are not bugs: a traceback per request would bury the log, and
users should be told "busy, try again" rather than "internal error". :func:`is_unavailable`
recognises them (connection refused or reset, a connection the pool had to invalidate, a
database that does not exist, SQLite's lock or open errors); :data:`OUTAGE` logs one warning when
the database goes away and one line when it answers again (a new pooled connection, or a
readiness check that passed), whatever the number of requests in between.
"""

from __future__ import annotations

import logging
import re
import socket
import threading

from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

# Texts of driver errors that mean "cannot reach or use the database now", not "bad statement".
_UNAVAILABLE_TEXT = re.compile(
    r"database is locked|unable to open database|disk i/o error|connection (?:was )?(?:closed|refused|reset|lost)"
    r"|connection is closed|could not connect|server closed the connection|the database system is"
    r"|terminating connection|cannot connect now|too many connections|does not exist",
    re.IGNORECASE,
)


def _driver_classes() -> tuple[type[BaseException], ...]:
    """asyncpg's connection-level errors (server gone, shutting down, refusing, no such database)."""
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return ()
    names = ("PostgresConnectionError", "CannotConnectNowError", "InvalidCatalogNameError",
             "TooManyConnectionsError", "AdminShutdownError", "CrashShutdownError", "ConnectionDoesNotExistError",
             "InterfaceError")
    return tuple(cls for name in names if isinstance(cls := getattr(asyncpg, name, None), type))


_DRIVER: tuple[type[BaseException], ...] | None = None


def _driver_unavailable(exc: BaseException) -> bool:
    global _DRIVER
    if _DRIVER is None:
        # Raw OS errors only of the kind a driver's connect raises: not ConnectionResetError or
        # BrokenPipeError, which a client that went away (a closed WebSocket, a closed pipe)
        # raises too; a reset database connection reaches us wrapped by the driver or SQLAlchemy.
        _DRIVER = (*_driver_classes(), ConnectionRefusedError, TimeoutError, socket.gaierror)
    return isinstance(exc, _DRIVER)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database cannot be reached or used now."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.DisconnectionError | sa_exc.TimeoutError):  # TimeoutError: pool exhausted
            return True
        if isinstance(current, sa_exc.OperationalError | sa_exc.InterfaceError) and _UNAVAILABLE_TEXT.search(
            str(current.orig if current.orig is not None else current)
        ):
            return True
        if _driver_unavailable(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def reason(exc: BaseException) -> str:
    """A short, parameter-free description: the class names only (SQL parameters quote users)."""
    names: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(names) < 3:
        names.append(type(current).__name__)
        current = current.__cause__
    return " ← ".join(names)


class Outage:
    """The database's state as this process last saw it, and the one log line per change."""

    def __init__(self) -> None:
        self._down = False
        self._lock = threading.Lock()  # the pool's connect event may fire on a worker thread
        self.transitions = 0

    @property
    def down(self) -> bool:
        return self._down

    def mark_down(self, exc: BaseException) -> None:
        with self._lock:
            if self._down:
                return
            self._down = True
            self.transitions += 1
        log.warning("database unavailable (%s): answering 'busy' until it is back", reason(exc))

    def mark_up(self) -> None:
        if not self._down:
            return
        with self._lock:
            if not self._down:
                return
            self._down = False
            self.transitions += 1
        log.warning("database reachable again")


OUTAGE = Outage()
