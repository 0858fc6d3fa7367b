"""Cost of one dialogue turn (the engine alone, no HTTP): messages per second and latency,
sequential and with concurrent users, on the embedded SQLite or a PostgreSQL URL.

This is where the WeChat webhook's time goes (`bench/webhook.py` measures the whole request);
use it to see whether a change to the engine or the storage layer helps.

    .venv/bin/python bench/engine.py [--messages 300] [--concurrency 1 50] [--database-url URL] [--compare]

It prints the CPU of a turn by stage (channel, NLU, knowledge, database, handler), measured on
turns run one at a time, and the whole process's CPU per turn over the same turns.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time

from bot import metrics
from bot.config import load_settings
from bot.messages import InboundMessage
from bot.runtime import Runtime

TEXTS = ("你好", "电子秤要不要强制检定", "CCC认证找谁办", "谢谢", "外观设计专利保护几年", "转人工")


async def run(runtime: Runtime, messages: int, concurrency: int, offset: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            text = TEXTS[i % 4]  # the first four: no handoff state carried between rounds
            await runtime.dialogue.handle(InboundMessage("wechat", f"user-{offset + i}", text, message_id=str(i)))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(messages)))
    return time.perf_counter() - started, latencies


async def stages(runtime: Runtime, messages: int, offset: int, users: int = 0
                 ) -> tuple[dict[str, float], float, float]:
    """CPU per turn by stage, turns one at a time (so each stage's thread CPU is its own), and
    the process's CPU per turn over the same turns (which includes the event loop's own work).
    ``users``: 0, every message from a new user (a first contact each); N, from N users in turn
    (after the first round, known users: the common case of a running service)."""
    totals = dict.fromkeys(metrics.STAGES, 0.0)
    process_started = time.process_time()
    for i in range(messages):
        user = f"user-{offset + i}" if not users else f"user-{offset}-{i % users}"
        with metrics.turn_scope(record=False) as clock:
            await runtime.dialogue.handle(InboundMessage("wechat", user, TEXTS[i % 4],
                                                         message_id=f"{i}/{process_started}"))
        for name, seconds in clock.cpu.items():
            totals[name] += seconds
    process = (time.process_time() - process_started) / messages
    return {name: seconds / messages for name, seconds in totals.items()}, sum(totals.values()) / messages, process


def print_stages(per_stage: dict[str, float], total: float, process: float) -> None:
    print("CPU per turn by stage, turns one at a time (ms): "
          + ", ".join(f"{name} {seconds * 1000:.2f}" for name, seconds in per_stage.items())
          + f"; stages {total * 1000:.2f}, whole process {process * 1000:.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--users", type=int, default=0,
                        help="stages: messages from this many users in turn (0: a new user each, the default)")
    parser.add_argument("--compare", action="store_true",
                        help="measure the stages as before the BLAS and limits-storage fixes first (same process)")
    args = parser.parse_args()
    environ = {"QIBOT_DATA_DIR": tempfile.mkdtemp(prefix="qibot-engine-"), "QIBOT_LOG_LEVEL": "WARNING"}
    if args.database_url:
        environ["QIBOT_DATABASE_URL"] = args.database_url
    runtime = await Runtime.start(load_settings(environ=environ))
    try:
        await run(runtime, 20, 1, 10**6)  # warm-up: caches, connection pool
        print(f"dialogue engine, {args.messages} messages per run, database: "
              f"{'SQLite' if runtime.settings.is_sqlite else 'PostgreSQL'}")
        if args.compare:
            # Before/after in the same process: first as before the two fixes (BLAS with its
            # default threads, limits' own in-process storage), then one BLAS thread, then both
            # (what Runtime.start and the Limiter do now; docs/operations.md).
            from limits.aio.storage import MemoryStorage
            from limits.aio.strategies import MovingWindowRateLimiter
            from threadpoolctl import threadpool_limits

            assert runtime.limits is not None
            ours = runtime.limits._memory
            runtime.limits._memory = MovingWindowRateLimiter(MemoryStorage())
            with threadpool_limits(limits=os.cpu_count() or 1, user_api="blas"):
                print("before: BLAS threads one per CPU, limits' MemoryStorage")
                print_stages(*await stages(runtime, args.messages, 2 * 10**7))
            print("BLAS threads 1, limits' MemoryStorage")
            print_stages(*await stages(runtime, args.messages, 3 * 10**7))
            runtime.limits._memory = ours
            print("now: BLAS threads 1, InlineExpiryMemoryStorage")
        if args.users:
            await stages(runtime, args.users, 4 * 10**7, args.users)  # their first contacts, not measured
            print(f"known users ({args.users} in turn):")
            print_stages(*await stages(runtime, args.messages, 4 * 10**7, args.users))
            print("a new user each message:")
        print_stages(*await stages(runtime, args.messages, 10**7))
        print(f"{'users at once':>14} {'msgs/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for n, concurrency in enumerate(args.concurrency):
            elapsed, latencies = await run(runtime, args.messages, concurrency, n * args.messages)
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(f"{concurrency:>14} {args.messages / elapsed:>8.0f} {statistics.median(latencies) * 1000:>8.1f} "
                  f"{p99 * 1000:>8.1f}")
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
