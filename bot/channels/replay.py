"""Replay protection for signed callbacks (WeChat Official Account, WeCom).

In WeChat's plaintext and compatible modes the signature covers the token, the timestamp and
the nonce, not the body: whoever saw one signed URL could post any message, as any openid, with
it until the timestamp window closes. So every signed callback is remembered by its
signature/timestamp/nonce with the digest of its body, for as long as the timestamp could still
pass the window check:

* first time seen → processed;
* seen with the same body → a retry of the same delivery (WeChat retries a callback it got no
  answer to): processed as before, where the message-id de-duplication answers it once;
* seen with another body → a replay: refused with 409, nothing processed.

The memory is Redis when ``QIBOT_REDIS_URL`` is set (``SET NX`` with the window as TTL, shared by
every worker), else the database (``seen_nonce``, claimed with ``INSERT … ON CONFLICT DO
NOTHING``, so two workers cannot both take a key). A Redis that does not answer falls back to
the database for that call.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.storage.dialect import insert_ignore
from bot.storage.guards import SeenNonce
from bot.storage.types import utcnow

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

_TABLE = SeenNonce.__table__

_REDIS_TIMEOUT = 0.5  # seconds: a slow Redis must not hold a callback past WeChat's 5 s
_PURGE_EVERY = 60.0  # seconds between deletions of expired rows, per process
_LOG_EVERY = 60.0


class Seen(enum.Enum):
    NEW = "new"
    RETRY = "retry"  # same signed URL, same body
    REPLAY = "replay"  # same signed URL, another body


class ReplayGuard:
    """Remembers signed callbacks for ``window`` seconds past their timestamp."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, window: int, redis_url: str = "",
                 redis_prefix: str = "qibot", clock: Callable[[], float] = time.time) -> None:
        self.sessions = sessions
        self.window = window
        self.prefix = redis_prefix
        self.clock = clock
        self._redis: Redis | None = None
        if redis_url:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(redis_url, socket_timeout=_REDIS_TIMEOUT,
                                         socket_connect_timeout=_REDIS_TIMEOUT)
        self._purged_at = 0.0
        self._redis_down_logged = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, sessions: async_sessionmaker[AsyncSession],
                      window: int) -> ReplayGuard:
        return cls(sessions, window=window, redis_url=settings.redis_url, redis_prefix=settings.redis_prefix)

    @property
    def backend(self) -> str:
        return "redis" if self._redis is not None else "database"

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    def _ttl(self, timestamp: str) -> int:
        """Seconds the signature can still pass the window check: until ``timestamp + window``,
        measured from now (a timestamp ahead of our clock stays valid longer), plus a margin."""
        now = self.clock()
        try:
            stamp = float(timestamp)
        except ValueError:
            stamp = now
        return int(max(now, min(stamp, now + self.window)) - now) + self.window + 5

    async def check(self, channel: str, signature: str, timestamp: str, nonce: str, body: bytes) -> Seen:
        """Record this signed callback and say whether it was seen before (call after the
        signature and the timestamp window were verified, so only genuine URLs are stored)."""
        key = f"{channel}:" + hashlib.sha256(f"{signature}|{timestamp}|{nonce}".encode()).hexdigest()
        digest = hashlib.sha256(body).hexdigest()
        ttl = self._ttl(timestamp)
        if self._redis is not None:
            try:
                return await self._check_redis(key, digest, ttl)
            except Exception as exc:  # down or slow: the database still guards
                self._redis_unavailable(exc)
        return await self._check_db(key, digest, ttl)

    async def _check_redis(self, key: str, digest: str, ttl: int) -> Seen:
        assert self._redis is not None
        name = f"{self.prefix}:nonce:{key}"
        if await self._redis.set(name, digest, ex=ttl, nx=True):
            return Seen.NEW
        first = await self._redis.get(name)
        if first is None:  # expired between the two calls: the window has closed meanwhile
            return Seen.NEW if await self._redis.set(name, digest, ex=ttl, nx=True) else Seen.REPLAY
        seen = first.decode() if isinstance(first, bytes) else first
        return Seen.RETRY if seen == digest else Seen.REPLAY

    async def _check_db(self, key: str, digest: str, ttl: int) -> Seen:
        # A plain connection, not an ORM session: every callback runs this, nothing here needs
        # an ORM object, and the session's own work cost as much as the statement (twice as
        # much on PostgreSQL).
        now = utcnow()
        engine = self.sessions.kw["bind"]
        async with engine.begin() as conn:
            await self._purge(conn, now)
            taken = await insert_ignore(
                conn, _TABLE,
                {"key": key, "body_digest": digest, "expires_at": now + timedelta(seconds=ttl)},
                ("key",), returning="key",
            )
            if taken is not None:
                return Seen.NEW
            row = (await conn.execute(
                select(_TABLE.c.body_digest, _TABLE.c.expires_at).where(_TABLE.c.key == key)
            )).one()
            if row.expires_at <= now:  # a leftover the purge has not reached yet
                await conn.execute(delete(_TABLE).where(_TABLE.c.key == key))
                await insert_ignore(
                    conn, _TABLE,
                    {"key": key, "body_digest": digest, "expires_at": now + timedelta(seconds=ttl)},
                    ("key",), returning="key",
                )
                return Seen.NEW
            return Seen.RETRY if row.body_digest == digest else Seen.REPLAY

    async def _purge(self, conn: AsyncConnection, now: datetime) -> None:
        if self.clock() - self._purged_at < _PURGE_EVERY:
            return
        self._purged_at = self.clock()
        await conn.execute(delete(_TABLE).where(_TABLE.c.expires_at < now))

    def _redis_unavailable(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._redis_down_logged >= _LOG_EVERY:
            self._redis_down_logged = now
            log.warning("replay guard: Redis unavailable (%s); nonces are kept in the database until it answers",
                        type(exc).__name__)
