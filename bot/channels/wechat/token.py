"""One access token for every worker, kept in the database.

Fetching a token invalidates the previous one (after a short grace), so workers that each fetch
their own keep knocking each other out. Here a worker refreshes only after winning a lease with
a conditional UPDATE on the token row; the others wait until the row's ``version`` moves and
then use the new token. Tokens are refreshed ahead of expiry and when WeChat rejects them
(40001/40014/42001), but only if the rejected token is still the stored one — if another worker
already replaced it, the replacement is used instead of fetching a third.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.wechat.store import insert_or_skip
from bot.storage.db import transaction
from bot.storage.models import WeChatAccessToken
from bot.storage.types import utcnow

log = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[tuple[str, int]]]  # → (access token, seconds it lives)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TokenUnavailable(Exception):
    """No token could be obtained (WeChat refused or another worker's refresh never finished)."""


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: datetime
    version: int


class TokenStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        app_id: str,
        fetch: Fetch,
        *,
        clock: Callable[[], datetime] = utcnow,
        early: timedelta = timedelta(minutes=5),
        lease: timedelta = timedelta(seconds=15),
        poll: float = 0.05,
    ) -> None:
        self.sessions = sessions
        self.app_id = app_id
        self._fetch = fetch
        self.clock = clock
        self.early = early
        self.lease = lease
        self.poll = poll
        self._owner = uuid.uuid4().hex
        self._cached: _Token | None = None
        self._lock = asyncio.Lock()  # one refresh attempt per process at a time
        self.fetches = 0  # tokens this process fetched from WeChat (tests and logs)

    def _fresh(self, token: _Token | None, rejected: str | None = None) -> bool:
        return (
            token is not None
            and bool(token.value)
            and token.value != rejected
            and token.expires_at - self.early > self.clock()
        )

    async def get(self) -> str:
        """A valid token: from memory, else from the database, else freshly fetched."""
        if self._fresh(self._cached):
            assert self._cached is not None
            return self._cached.value
        async with self._lock:
            return await self._obtain(rejected=None)

    async def invalidate(self, rejected: str) -> str:
        """WeChat rejected ``rejected``: return a token other than it, refreshing if needed."""
        async with self._lock:
            if self._fresh(self._cached, rejected):
                assert self._cached is not None
                return self._cached.value
            return await self._obtain(rejected=rejected)

    async def _obtain(self, rejected: str | None) -> str:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + 2 * self.lease.total_seconds()
        while True:
            stored = await self._read()
            if self._fresh(stored, rejected):
                self._cached = stored
                return stored.value
            if await self._claim(stored.version):
                return await self._refresh()
            if loop.time() > give_up:
                raise TokenUnavailable("another worker holds the token refresh lease and has not finished")
            await asyncio.sleep(self.poll)

    async def _read(self) -> _Token:
        async with transaction(self.sessions) as session:
            row = (
                await session.execute(select(WeChatAccessToken).where(WeChatAccessToken.app_id == self.app_id))
            ).scalar_one_or_none()
            if row is None:
                await insert_or_skip(
                    session,
                    WeChatAccessToken.__table__,
                    {"app_id": self.app_id, "token": "", "expires_at": _EPOCH, "version": 0,
                     "updated_at": self.clock()},
                    ("app_id",),
                )
                return _Token("", _EPOCH, 0)
            return _Token(row.token, row.expires_at, row.version)

    async def _claim(self, version: int) -> bool:
        now = self.clock()
        table = WeChatAccessToken.__table__
        async with transaction(self.sessions) as session:
            result = await session.execute(
                update(table)
                .where(
                    table.c.app_id == self.app_id,
                    table.c.version == version,
                    or_(table.c.lease_until.is_(None), table.c.lease_until < now),
                )
                .values(lease_owner=self._owner, lease_until=now + self.lease)
            )
            return bool(cast("CursorResult[Any]", result).rowcount)  # an UPDATE's result is a CursorResult

    async def _refresh(self) -> str:
        table = WeChatAccessToken.__table__
        try:
            value, expires_in = await self._fetch()
        except BaseException:
            async with transaction(self.sessions) as session:
                await session.execute(
                    update(table)
                    .where(table.c.app_id == self.app_id, table.c.lease_owner == self._owner)
                    .values(lease_owner=None, lease_until=None)
                )
            raise
        self.fetches += 1
        now = self.clock()
        expires_at = now + timedelta(seconds=max(int(expires_in), 60))
        async with transaction(self.sessions) as session:
            result = await session.execute(
                update(table)
                .where(table.c.app_id == self.app_id, table.c.lease_owner == self._owner)
                .values(
                    token=value, expires_at=expires_at, version=table.c.version + 1, lease_owner=None,
                    lease_until=None, updated_at=now,
                )
            )
            if not cast("CursorResult[Any]", result).rowcount:
                log.warning("WeChat token refresh for %s outlived its lease; using the new token anyway", self.app_id)
            version = (
                await session.execute(select(table.c.version).where(table.c.app_id == self.app_id))
            ).scalar_one()
        self._cached = _Token(value, expires_at, version)
        log.info("WeChat access token refreshed for %s (valid until %s)", self.app_id, expires_at.isoformat())
        return value
