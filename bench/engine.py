"""Cost of one dialogue turn (the engine alone, no HTTP): messages per second and latency,
sequential and with concurrent users, on the embedded SQLite or a PostgreSQL URL.

This is where the WeChat webhook's time goes (`bench/webhook.py` measures the whole request);
use it to see whether a change to the engine or the storage layer helps.

    .venv/bin/python bench/engine.py [--messages 300] [--concurrency 1 50] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    environ = {"QIBOT_DATA_DIR": tempfile.mkdtemp(prefix="qibot-engine-"), "QIBOT_LOG_LEVEL": "WARNING"}
    if args.database_url:
        environ["QIBOT_DATABASE_URL"] = args.database_url
    runtime = await Runtime.start(load_settings(environ=environ))
    try:
        await run(runtime, 20, 1, 10**6)  # warm-up: caches, connection pool
        print(f"dialogue engine, {args.messages} messages per run, database: "
              f"{'SQLite' if runtime.settings.is_sqlite else 'PostgreSQL'}")
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
