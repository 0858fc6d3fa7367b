"""Live events across workers: small JSON events published on a topic, received by every
process that subscribed to it (the web chat's pushes, the coming staff console's updates).

With ``QIBOT_REDIS_URL`` the events go through Redis pub/sub (redis-py asyncio), so a page whose
WebSocket is held by worker B gets what worker A (or the delivery worker) published. Without
Redis they stay in this process, which is all a single ``qibot serve`` needs.

Events are a fast path, never the record: whatever they announce is in the database first (the
transcript, the outbox row), so an event that is lost (Redis restarting, a page between two
sockets) costs only its immediacy. :meth:`EventBus.publish` returns how many *processes*
listened; a publisher that must know whether anyone got it (the web chat notifier) treats 0 as
"hold the row for the next contact". While Redis is unreachable an event reaches this process's
subscribers only, and when the subscription comes back every ``on_resync`` callback runs so the
subscribers catch up from the database on what they may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger(__name__)

Event = dict[str, Any]
Handler = Callable[[Event], Awaitable[None]]
_TIMEOUT = 2.0  # seconds: a Redis that slow counts as down
_RETRY = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds between attempts to get the subscription back
_LOG_EVERY = 60.0
_POLL = 1.0  # seconds: how long the listener waits for a message before it looks whether to stop


class EventBus:
    """Publish/subscribe of JSON events by topic; in this process, or through Redis."""

    def __init__(self, redis_url: str = "", prefix: str = "qibot") -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._resync: list[Callable[[], Awaitable[None]]] = []
        self._prefix = f"{prefix}:ev:"
        self._redis: Redis | None = None
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._down_logged = 0.0
        if redis_url:
            from redis.asyncio import Redis

            # Named, so an operator's CLIENT LIST shows whose connections these are.
            self._redis = Redis.from_url(redis_url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT,
                                         client_name=f"{prefix}:events")

    @property
    def cluster(self) -> bool:
        """Whether events reach other processes (Redis is configured)."""
        return self._redis is not None

    # --- lifetime ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (with Redis). Returns at once: a Redis that is down is retried in the
        background, and events reach this process's subscribers meanwhile."""
        if self._redis is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="events-listener")

    async def wait_connected(self, within: float) -> bool:
        """Whether the Redis subscription is up within ``within`` seconds (tests, readiness)."""
        if self._redis is None:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), within)
        return self._connected.is_set()

    async def close(self) -> None:
        """Stop listening, without ever waiting long: a cancellation that lands inside the Redis
        client's read can be swallowed there, so the listener also stops by itself at its next
        poll (``_closing``), and ``close`` gives up waiting for it after a bound (a test run once
        hung here for minutes at teardown)."""
        self._closing = True
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener.cancel()
            done, _ = await asyncio.wait({listener}, timeout=2 * _TIMEOUT + _POLL)
            if done:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    listener.result()
            else:
                log.warning("events: the Redis listener did not stop within %.0f s; left behind",
                            2 * _TIMEOUT + _POLL)
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    # --- subscribing -------------------------------------------------------------------------

    def on_resync(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` whenever the Redis subscription comes back after a loss: events
        published meanwhile may not have arrived, so subscribers catch up from the database."""
        self._resync.append(callback)

    async def subscribe(self, topic: str, handler: Handler) -> None:
        handlers = self._handlers.setdefault(topic, [])
        handlers.append(handler)
        if len(handlers) == 1 and self._pubsub is not None:
            try:
                await self._pubsub.subscribe(self._prefix + topic)
            except Exception as exc:  # the listener reconnects and subscribes every topic again
                self._unavailable(exc)

    async def unsubscribe(self, topic: str, handler: Handler) -> None:
        handlers = self._handlers.get(topic)
        if handlers is None or handler not in handlers:
            return
        handlers.remove(handler)
        if handlers:
            return
        del self._handlers[topic]
        if self._pubsub is not None:
            try:
                await self._pubsub.unsubscribe(self._prefix + topic)
            except Exception as exc:
                self._unavailable(exc)

    def local_subscribers(self, topic: str) -> int:
        return len(self._handlers.get(topic, ()))

    # --- publishing --------------------------------------------------------------------------

    async def publish(self, topic: str, event: Event) -> int:
        """Send ``event`` to the subscribers of ``topic``; returns how many processes (without
        Redis, or while it is down: how many handlers in this one) received it."""
        if self._redis is not None:
            try:
                return int(await self._redis.publish(self._prefix + topic, json.dumps(event, ensure_ascii=False)))
            except Exception as exc:  # Redis down: this process's subscribers still get it
                self._unavailable(exc)
        return await self._dispatch(topic, event)

    async def _dispatch(self, topic: str, event: Event) -> int:
        delivered = 0
        for handler in list(self._handlers.get(topic, ())):
            try:
                await handler(event)
                delivered += 1
            except Exception:
                log.exception("events: a subscriber of %s failed", topic.split(":", 1)[0])
        return delivered

    # --- the Redis subscription ----------------------------------------------------------------

    async def _listen(self) -> None:
        assert self._redis is not None
        attempt, lost = 0, False
        while not self._closing:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                # A channel of its own keeps the subscription open while no topic is subscribed.
                await pubsub.subscribe(f"{self._prefix}_alive")
                # Visible to subscribe() before the topics are listed: a topic added meanwhile is
                # subscribed by one or the other (twice is harmless), never by neither.
                self._pubsub = pubsub
                topics = [self._prefix + t for t in self._handlers]
                if topics:
                    await pubsub.subscribe(*topics)
                attempt = 0
                self._connected.set()
                if lost:
                    log.warning("events: Redis subscription restored; catching up from the database")
                    for callback in list(self._resync):
                        try:
                            await callback()
                        except Exception:
                            log.exception("events: catching up after a Redis outage failed")
                while not self._closing:
                    message = await pubsub.get_message(timeout=_POLL)
                    if message is None or message.get("type") != "message":
                        continue
                    channel = message["channel"].decode() if isinstance(message["channel"], bytes) \
                        else str(message["channel"])
                    try:
                        event = json.loads(message["data"])
                    except ValueError:
                        continue
                    await self._dispatch(channel.removeprefix(self._prefix), event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._unavailable(exc)
                lost = True
            finally:
                self._pubsub = None
                self._connected.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            if self._closing:
                return
            await asyncio.sleep(_RETRY[min(attempt, len(_RETRY) - 1)])
            attempt += 1

    def _unavailable(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._down_logged >= _LOG_EVERY:
            self._down_logged = now
            log.warning("events: Redis unavailable (%s); live updates reach this process's pages only, "
                        "the rest catch up from the database", type(exc).__name__)
