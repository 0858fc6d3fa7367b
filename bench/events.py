"""Live events (bot/events.py): what a push costs when it crosses workers through Redis, against
the in-process bus a single worker uses. One bus publishes, another (a second "worker" in this
process, with its own Redis connections) has the topic subscribed; the time from ``publish`` to
the subscriber's handler, and publishes per second, for ``--events`` events.

    .venv/bin/python bench/events.py [--events 2000] [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from bot.events import EventBus


async def measure(publisher: EventBus, subscriber: EventBus, events: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    received = asyncio.Event()
    sent_at = 0.0

    async def handler(event: dict[str, Any]) -> None:
        latencies.append(time.perf_counter() - sent_at)
        received.set()

    await subscriber.subscribe("webchat:bench", handler)
    started = time.perf_counter()
    for i in range(events):
        received.clear()
        sent_at = time.perf_counter()
        assert await publisher.publish("webchat:bench", {"type": "push", "n": i}) == 1
        await asyncio.wait_for(received.wait(), 5)
    total = time.perf_counter() - started
    await subscriber.unsubscribe("webchat:bench", handler)
    return latencies, total


def report(name: str, latencies: list[float], total: float) -> None:
    ordered = sorted(latencies)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(f"{name:<28} median {statistics.median(ordered) * 1e3:6.3f} ms  p99 {p99 * 1e3:6.3f} ms  "
          f"{len(ordered) / total:8.0f} pushes/s (one at a time)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    local = EventBus()
    report("in process (one worker)", *await measure(local, local, args.events))

    prefix = f"qibot-bench-{uuid.uuid4().hex[:8]}"
    a, b = EventBus(args.redis_url, prefix), EventBus(args.redis_url, prefix)
    await b.start()
    if not await b.wait_connected(5):
        print(f"Redis not reachable at {args.redis_url}: cross-worker figures skipped")
        return
    try:
        report("across workers (Redis)", *await measure(a, b, args.events))
    finally:
        await a.close()
        await b.close()


if __name__ == "__main__":
    asyncio.run(main())
