"""Abuse limits: how much one user, one web address and one channel may ask of the service.

Two kinds, because they protect different things:

* **Rates at the edge** (messages per user and per web address, WebSockets per address and per
  session, new cases/handoffs/complaints per web address): counted by the ``limits`` library in
  Redis when ``QIBOT_REDIS_URL`` is set, so every worker shares one count, else in this
  process's memory (several workers without Redis each count alone). A Redis that stops
  answering falls back to memory for that check instead of letting everything through.
* **Quotas on what pages a person** (open cases per enterprise or per mobile, complaints per
  day, handoffs per hour, cases and complaints from the whole web chat per hour): counted in the
  database from the rows themselves, inside the turn's transaction, so they are exact across
  workers with or without Redis and cost nothing on an ordinary message.

A refusal is answered politely (texts in ``handlers/texts.yaml``), logged once per key and
minute for staff, and counted per day, limit and channel in ``limit_refusal`` (``qibot limits``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import ipaddress
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.services.case_states import OPEN_STATUSES
from bot.storage.dialect import upsert_increment
from bot.storage.models import ChannelIdentity, Complaint, Enterprise, LimitRefusal, LiveSession, ServiceCase
from bot.storage.types import utcnow

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bot.messages import InboundMessage

log = logging.getLogger(__name__)

# The terminal chat runs where the database is: whoever uses it could write rows directly.
EXEMPT_CHANNELS = frozenset({"cli"})
# Channels where a new user costs nothing (a cookie): such visitors give a mobile before they can
# page a person (README, "Limits"). A WeChat openid stands for a real-name WeChat account.
ANONYMOUS_CHANNELS = frozenset({"webchat"})

FLUSH_SECONDS = 10.0  # refusal counters reach the database at most this often per worker
LOG_EVERY_SECONDS = 60.0  # one log line per limit and key per minute, however hard the flood
CONNECTION_TTL_SECONDS = 180  # a WebSocket ticket in Redis outlives a crashed worker by at most this
_REDIS_TIMEOUT = 2.0  # seconds: a Redis that slow counts as down (a busy event loop can delay a reply by 0.5 s)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A limit was reached: which one, the text the user gets, and the values it shows."""

    limit: str
    text_key: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ticket:
    """An open WebSocket, counted under its address and session until released."""

    id: str
    keys: tuple[str, ...]


def _rates(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text)) if text.strip() else ()


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in text.split(",") if p.strip())


def client_address(
    remote: str | None,
    forwarded_for: str | None,
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> str | None:
    """The address a web request came from. ``X-Forwarded-For`` is believed only when the
    connection comes from a trusted proxy, and then read from the right: each proxy appends the
    address it saw, so the first one that is not a trusted proxy is the client (anything left of
    it was written by the client and may be forged)."""

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    if not remote or not trusted or not is_trusted(remote) or not forwarded_for:
        return remote
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # garbage where an address should be: count the proxy's peer
    return remote


def address_key(address: str) -> str:
    """IPv6 users get a whole /64 (rotating within it costs nothing), so a /64 counts as one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class InlineExpiryMemoryStorage(MemoryStorage):
    """limits' in-process storage, with its clean-up of expired entries made cheap.

    The library's version starts its clean-up after every hit, and it walks every key with a
    thread hop each (``asyncio.to_thread`` of one ``bisect``): with a few hundred users in the
    window that is hundreds of thread round trips per message, which the profile of a turn on
    PostgreSQL showed costing more than the turn (``bench/engine.py``, docs/operations.md). Here
    the same clean-up runs on the event loop (a bisect is microseconds) and at most once a
    second. Counting is untouched: the moving window judges entries by their time, so an expired
    entry kept a second longer changes no answer. The two overrides are the library's private,
    name-mangled methods (limits 5.x, pinned in deploy/constraints.txt); the limits tests fail if
    they stop being called."""

    CLEANUP_EVERY = 1.0  # seconds

    def __init__(self) -> None:
        super().__init__()
        self._last_cleanup = 0.0
        self.cleanups = 0

    async def _MemoryStorage__expire_events(self) -> None:
        self.cleanups += 1
        now = time.time()
        for key in list(self.events.keys()):
            events = self.events.get(key) or []
            cutoff = bisect.bisect_left(events, -now, key=lambda event: -event.expiry)
            if cutoff:
                self.events[key] = events[:cutoff]
            else:
                self.events.pop(key, None)
                self.locks.pop(key, None)
        for key in list(self.expirations.keys()):
            if self.expirations[key] <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)

    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now - self._last_cleanup < self.CLEANUP_EVERY or (self.timer is not None and not self.timer.done()):
            return
        self._last_cleanup = now
        self.timer = asyncio.create_task(self._MemoryStorage__expire_events())


class Limiter:
    """The limits of one process; the runtime builds one and hands it to the dialogue engine and
    the web chat. ``sessions`` (bound by the runtime) is where refusal counters are written."""

    def __init__(self, settings: Settings, *, sessions: async_sessionmaker[AsyncSession] | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock  # the day a refusal is counted on and the counters' last_at
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        self.messages = _rates(settings.limit_messages)
        self.messages_per_ip = _rates(settings.limit_messages_per_ip)
        self.openings_per_ip = _rates(settings.limit_openings_per_ip)
        self.logins = _rates(settings.limit_login)
        self.logins_per_ip = _rates(settings.limit_login_per_ip)
        self._memory = MovingWindowRateLimiter(InlineExpiryMemoryStorage())
        self._shared: MovingWindowRateLimiter | None = None
        self._redis: Redis | None = None
        self.backend = "memory"
        if settings.redis_url:
            from redis.asyncio import Redis

            storage: Storage = RedisStorage(
                _limits_uri(settings.redis_url), implementation="redispy", key_prefix=f"{settings.redis_prefix}:rate",
                socket_timeout=_REDIS_TIMEOUT, socket_connect_timeout=_REDIS_TIMEOUT,
            )
            self._shared = MovingWindowRateLimiter(storage)
            self._redis = Redis.from_url(settings.redis_url, socket_timeout=_REDIS_TIMEOUT,
                                         socket_connect_timeout=_REDIS_TIMEOUT)
            self.backend = "redis"
        # WebSockets open in this process (memory), or the tickets to refresh in Redis.
        self._connections: dict[str, set[str]] = {}
        self._refresher: asyncio.Task[None] | None = None
        self._pending: Counter[tuple[str, str, str]] = Counter()  # (day, limit, channel) -> refusals
        self._flush_task: asyncio.Task[None] | None = None
        self._last_flush = time.monotonic()
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}  # (limit, key) -> (last log, suppressed)
        self._redis_down_logged = 0.0

    # --- the edge: rates ---------------------------------------------------------------------

    async def check_message(self, message: InboundMessage) -> Refusal | None:
        """Per chat user, then per web address. Refused messages are not processed."""
        if message.channel in EXEMPT_CHANNELS:
            return None
        if not await self._hit(self.messages, "msg", message.channel, message.user_id):
            return self._refuse(Refusal("messages", "limit_messages"), message.channel, message.user_id[:16])
        address = message.client_ip
        if address and not await self._hit(self.messages_per_ip, "msgip", address_key(address)):
            return self._refuse(Refusal("messages_per_ip", "limit_messages"), message.channel, address)
        return None

    async def check_address_opening(self, channel: str, address: str | None, *, consume: bool = True) -> Refusal | None:
        """New cases, handoffs and complaints started from one web address. With ``consume``
        false it only looks (an intake that would be refused at the end is refused at the start)."""
        if not address or channel in EXEMPT_CHANNELS or not self.openings_per_ip:
            return None
        key = address_key(address)
        allowed = (await self._hit(self.openings_per_ip, "open", key) if consume
                   else await self._test(self.openings_per_ip, "open", key))
        if allowed:
            return None
        return self._refuse(Refusal("openings_per_ip", "limit_openings"), channel, address)

    async def login_allowed(self, login: str, address: str | None) -> bool:
        """May someone try to sign in to the console as ``login`` from ``address`` now? Only
        failures are counted (:meth:`login_failed`), so a person who signs in is never slowed."""
        if not await self._test(self.logins, "login", login.lower()[:40]):
            self._refuse(Refusal("login", "limit_login"), "console", login[:16])
            return False
        if address and not await self._test(self.logins_per_ip, "loginip", address_key(address)):
            self._refuse(Refusal("login_per_ip", "limit_login"), "console", address)
            return False
        return True

    async def login_failed(self, login: str, address: str | None) -> None:
        """Count a failed console sign-in against the login and the address."""
        await self._hit(self.logins, "login", login.lower()[:40])
        if address:
            await self._hit(self.logins_per_ip, "loginip", address_key(address))

    async def _hit(self, items: tuple[RateLimitItem, ...], *identifiers: str) -> bool:
        for item in items:  # shortest window first: a refused burst does not use up the longer one
            if not await self._call("hit", item, identifiers):
                return False
        return True

    async def _test(self, items: tuple[RateLimitItem, ...], *identifiers: str) -> bool:
        for item in items:
            if not await self._call("test", item, identifiers):
                return False
        return True

    async def _call(self, method: str, item: RateLimitItem, identifiers: tuple[str, ...]) -> bool:
        if self._shared is not None:
            try:
                return bool(await getattr(self._shared, method)(item, *identifiers))
            except Exception as exc:  # Redis down or slow: count in memory rather than not at all
                self._redis_unavailable(exc)
        return bool(await getattr(self._memory, method)(item, *identifiers))

    def _redis_unavailable(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._redis_down_logged >= LOG_EVERY_SECONDS:
            self._redis_down_logged = now
            log.warning("limits: Redis unavailable (%s); counting in this process until it answers",
                        type(exc).__name__)

    # --- the edge: WebSockets ----------------------------------------------------------------

    async def acquire_connection(self, channel: str, address: str | None, session_key: str) -> Ticket | Refusal:
        """Count one more WebSocket under its address and its session, or refuse it."""
        checks = [("ws_per_session", f"wss:{session_key}", self.settings.limit_ws_per_session)]
        if address:
            checks.append(("ws_per_ip", f"wsip:{address_key(address)}", self.settings.limit_ws_per_ip))
        ticket = Ticket(uuid.uuid4().hex, tuple(key for _, key, limit in checks if limit))
        for name, key, limit in checks:
            if not limit:
                continue
            if await self._count_connections(key) >= limit:
                await self.release_connection(ticket)
                shown = address if name == "ws_per_ip" and address else session_key[:16]
                return self._refuse(Refusal(name, "limit_connections", {"limit": limit}), channel, shown)
            await self._add_connection(key, ticket.id)
        return ticket

    async def release_connection(self, ticket: Ticket) -> None:
        for key in ticket.keys:
            members = self._connections.get(key)
            if members is not None:
                members.discard(ticket.id)
                if not members:
                    del self._connections[key]
            if self._redis is not None:
                with contextlib.suppress(Exception):
                    await self._redis.zrem(self._zkey(key), ticket.id)

    def _zkey(self, key: str) -> str:
        return f"{self.settings.redis_prefix}:conn:{key}"

    async def _count_connections(self, key: str) -> int:
        if self._redis is not None:
            try:
                now = time.time()
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.zremrangebyscore(self._zkey(key), "-inf", now)
                    pipe.zcard(self._zkey(key))
                    _, count = await pipe.execute()
                return int(count)
            except Exception as exc:
                self._redis_unavailable(exc)
        return len(self._connections.get(key, ()))

    async def _add_connection(self, key: str, ticket_id: str) -> None:
        self._connections.setdefault(key, set()).add(ticket_id)
        if self._redis is None:
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(self._zkey(key), {ticket_id: time.time() + CONNECTION_TTL_SECONDS})
                pipe.expire(self._zkey(key), CONNECTION_TTL_SECONDS)
                await pipe.execute()
        except Exception as exc:
            self._redis_unavailable(exc)
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_connections(), name="limits-ws-refresh")

    async def _refresh_connections(self) -> None:
        """Keep this worker's open WebSockets counted in Redis; a worker that dies stops
        refreshing, and its tickets drop out after ``CONNECTION_TTL_SECONDS``."""
        while self._connections and self._redis is not None:
            await asyncio.sleep(CONNECTION_TTL_SECONDS / 3)
            try:
                expires = time.time() + CONNECTION_TTL_SECONDS
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, members in list(self._connections.items()):
                        pipe.zadd(self._zkey(key), dict.fromkeys(members, expires), xx=True)
                        pipe.expire(self._zkey(key), CONNECTION_TTL_SECONDS)
                    await pipe.execute()
            except Exception as exc:
                self._redis_unavailable(exc)

    # --- quotas in the database ---------------------------------------------------------------

    async def check_opening(
        self,
        session: AsyncSession,
        *,
        kind: str,
        identity: ChannelIdentity,
        enterprise: Enterprise | None,
        address: str | None,
        now: datetime,
        consume: bool = True,
    ) -> Refusal | None:
        """May this user start a ``kind`` (case | handoff | complaint) now? The quotas first
        (exact, from the database), then the web address's rate, which a refusal leaves unused."""
        channel = identity.channel
        if channel in EXEMPT_CHANNELS:
            return None
        refusal = await self._quota(session, kind, identity, enterprise, now)
        if refusal is not None:
            return self._refuse(refusal, channel, f"identity:{identity.id}", now)
        return await self.check_address_opening(channel, address, consume=consume)

    async def _quota(
        self, session: AsyncSession, kind: str, identity: ChannelIdentity, enterprise: Enterprise | None,
        now: datetime,
    ) -> Refusal | None:
        s = self.settings
        if kind in ("case", "handoff") and s.limit_open_cases and enterprise is not None:
            own = await _count(session, select(func.count(ServiceCase.id)).where(
                ServiceCase.enterprise_id == enterprise.id, ServiceCase.status.in_(OPEN_STATUSES)))
            # A handoff joins the enterprise's open case when there is one: it opens nothing new.
            if not (kind == "handoff" and own):
                same_person = [ServiceCase.enterprise_id == enterprise.id]
                if enterprise.mobile:  # one mobile behind many web sessions is one person
                    same_person.append(Enterprise.mobile == enterprise.mobile)
                total = await _count(session, select(func.count(ServiceCase.id))
                                     .join(Enterprise, Enterprise.id == ServiceCase.enterprise_id)
                                     .where(or_(*same_person), ServiceCase.status.in_(OPEN_STATUSES)))
                if total >= s.limit_open_cases:
                    return Refusal("open_cases", "limit_open_cases", {"limit": s.limit_open_cases})
        if kind == "complaint" and s.limit_complaints_per_day and enterprise is not None:
            filed = await _count(session, select(func.count(Complaint.id)).where(
                Complaint.enterprise_id == enterprise.id, Complaint.created_at >= now - timedelta(days=1)))
            if filed >= s.limit_complaints_per_day:
                return Refusal("complaints_per_day", "limit_complaints", {"limit": s.limit_complaints_per_day})
        if kind == "handoff" and s.limit_handoffs_per_hour:
            started = await _count(session, select(func.count(LiveSession.id)).where(
                LiveSession.identity_id == identity.id, LiveSession.created_at >= now - timedelta(hours=1)))
            if started >= s.limit_handoffs_per_hour:
                return Refusal("handoffs_per_hour", "limit_handoffs", {"limit": s.limit_handoffs_per_hour})
        if identity.channel in ANONYMOUS_CHANNELS and s.limit_web_cases_per_hour:
            since = now - timedelta(hours=1)
            web = list(ANONYMOUS_CHANNELS)
            opened = await _count(session, select(func.count(ServiceCase.id))
                                  .join(ChannelIdentity, ChannelIdentity.id == ServiceCase.identity_id)
                                  .where(ChannelIdentity.channel.in_(web), ServiceCase.created_at >= since))
            opened += await _count(session, select(func.count(Complaint.id))
                                   .join(ChannelIdentity, ChannelIdentity.id == Complaint.identity_id)
                                   .where(ChannelIdentity.channel.in_(web), Complaint.created_at >= since))
            if opened >= s.limit_web_cases_per_hour:
                log.error("limits: %d cases and complaints from the web chat in the last hour (limit %d): "
                          "new ones are refused until the hour has passed; check for abuse",
                          opened, s.limit_web_cases_per_hour)
                return Refusal("web_cases_per_hour", "limit_web_busy")
        return None

    # --- telling staff -----------------------------------------------------------------------

    def _refuse(self, refusal: Refusal, channel: str, key: str, when: datetime | None = None) -> Refusal:
        """Log (once per limit, key and minute, with how many were refused meanwhile) and count on
        the day of ``when`` (the caller's clock; the limiter's own at the edge, before any turn)."""
        now = time.monotonic()
        last, suppressed = self._logged.get((refusal.limit, key), (0.0, 0))
        if now - last >= LOG_EVERY_SECONDS:
            if len(self._logged) > 10_000:  # a flood from many keys must not grow this forever
                self._logged.clear()
            self._logged[(refusal.limit, key)] = (now, 0)
            more = f" ({suppressed} more since the last line)" if suppressed else ""
            log.warning("limit reached: %s on %s for %s%s", refusal.limit, channel, key, more)
        else:
            self._logged[(refusal.limit, key)] = (last, suppressed + 1)
        day = (when or self.clock()).strftime("%Y-%m-%d")
        self._pending[(day, refusal.limit, channel)] += 1
        if (self.sessions is not None and now - self._last_flush >= FLUSH_SECONDS
                and (self._flush_task is None or self._flush_task.done())):
            self._flush_task = asyncio.create_task(self.flush(), name="limits-flush")
        return refusal

    async def flush(self) -> None:
        """Add the refusals counted since the last flush to ``limit_refusal``."""
        self._last_flush = time.monotonic()
        if self.sessions is None or not self._pending:
            return
        pending, self._pending = self._pending, Counter()
        now = self.clock()
        try:
            async with self.sessions() as session, session.begin():
                for (day, limit, channel), count in sorted(pending.items()):
                    await upsert_increment(
                        session, LimitRefusal.__table__,
                        {"day": day, "limit": limit, "channel": channel, "count": count, "last_at": now},
                        ("day", "limit", "channel"), "count", {"last_at": now}, amount=count,
                    )
        except Exception:
            log.exception("limits: could not store refusal counters; keeping them for the next try")
            self._pending.update(pending)

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        if self._flush_task is not None:
            await asyncio.gather(self._flush_task, return_exceptions=True)
        await self.flush()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    async def ping(self) -> bool:
        """Whether the shared store answers (True without Redis: memory always does)."""
        if self._redis is None:
            return True
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False


def _limits_uri(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


async def _count(session: AsyncSession, stmt: Any) -> int:
    return int((await session.execute(stmt)).scalar_one() or 0)


async def refusal_counts(session: AsyncSession, since_day: str) -> list[LimitRefusal]:
    """The counters operators read, newest day first."""
    rows = await session.execute(
        select(LimitRefusal).where(LimitRefusal.day >= since_day)
        .order_by(LimitRefusal.day.desc(), LimitRefusal.count.desc())
    )
    return list(rows.scalars())
