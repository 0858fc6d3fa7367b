"""The in-process rate storage cleans up on the event loop, at most once a second, and counts
exactly as the library's (bot/services/limits.py, InlineExpiryMemoryStorage)."""

from __future__ import annotations

import asyncio
import threading

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from bot.services.limits import InlineExpiryMemoryStorage


def test_the_overridden_library_methods_still_exist() -> None:
    # If limits renames them, the overrides would silently stop being used.
    assert hasattr(MemoryStorage, "_MemoryStorage__expire_events")
    assert hasattr(MemoryStorage, "_MemoryStorage__schedule_expiry")


async def test_counts_like_the_library_and_cleans_up_without_threads(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = InlineExpiryMemoryStorage(), MemoryStorage()
    limit = parse("5/second")
    threads: list[str] = []
    real_to_thread = asyncio.to_thread

    async def spy(func, *args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return await real_to_thread(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", spy)
    answers = []
    for storage in (ours, theirs):
        limiter = MovingWindowRateLimiter(storage)
        answers.append([await limiter.hit(limit, f"user-{i % 3}") for i in range(30)])
    assert answers[0] == answers[1]  # the same allowed/refused sequence
    for storage in (ours, theirs):
        if storage.timer is not None:
            await storage.timer  # let the library's clean-up (and its thread hops) finish
    assert threads  # the library's clean-up hops to a thread...
    before = len(threads)
    limiter = MovingWindowRateLimiter(ours)
    for i in range(50):
        await limiter.hit(limit, f"other-{i}")
    await asyncio.sleep(0)
    assert ours.cleanups == 1  # once for 50 hits (the library: after every hit, a thread hop per key)
    assert len(threads) == before  # ...ours never does
    ours._last_cleanup = 0.0  # a second later
    ours.events["old"] = []  # an emptied window is dropped
    await limiter.hit(limit, "late")
    await asyncio.sleep(0)
    assert ours.cleanups == 2 and "old" not in ours.events
