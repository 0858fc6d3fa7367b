"""The commissioner's console pages with many cases: server round-trip time of the inbox (a
commissioner, a supervisor, a manager) and of a case page, over real HTTP on localhost.

``/readyz`` (one database round trip) is timed alongside as the baseline.
Generates ``--cases`` cases (most of them closed, as in a year of work; 2 % new, 5 % in progress)
with three timeline events each, in a new PostgreSQL database (``--admin-url``) or SQLite, then
times ``--requests`` requests per page and prints p50/p95 in milliseconds.

    .venv/bin/python bench/console_inbox.py [--cases 100000] [--requests 50] [--sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import create_app  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.services.demo import load_demo  # noqa: E402
from bot.storage.db import transaction  # noqa: E402
from bot.storage.models import CaseEvent, Commissioner, Enterprise, ServiceCase  # noqa: E402
from tests.helpers.console import add_accounts, sign_in  # noqa: E402

DOMAINS = ("metrology", "standards", "testing", "certification", "quality", "ip", "branding")
DISTRICTS = ("思明区", "湖里区", "集美区", "海沧区", "同安区", "翔安区")
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


async def generate(runtime: Runtime, count: int) -> str:
    rng = random.Random(15)
    async with transaction(runtime.sessions) as session:
        people = (await session.execute(select(Commissioner.id))).scalars().all()
    batch = 5000
    first = ""
    for start in range(0, count, batch):
        size = min(batch, count - start)
        async with transaction(runtime.sessions) as session:
            ids = (await session.execute(insert(Enterprise).returning(Enterprise.id), [
                {"name": f"厦门示例{start + i}有限公司", "district": rng.choice(DISTRICTS), "mobile": "13800000000",
                 "created_at": NOW, "updated_at": NOW} for i in range(size)])).scalars().all()
            rows = []
            for i, enterprise_id in enumerate(ids):
                n = start + i + 1
                roll = rng.random()
                status = "new" if roll < 0.02 else "accepted" if roll < 0.07 else "closed"
                created = NOW - timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
                owner = rng.choice(people) if status != "new" else None
                rows.append({"number": f"QI-2026-{n:06d}", "enterprise_id": enterprise_id,
                             "domain": rng.choice(DOMAINS), "district": rng.choice(DISTRICTS), "status": status,
                             "description": "压力表校准", "assignee_id": rng.choice(people), "owner_id": owner,
                             "created_at": created, "updated_at": created, "suggestions": {}, "rating_round": 0})
            case_ids = (await session.execute(insert(ServiceCase).returning(ServiceCase.id), rows)).scalars().all()
            await session.execute(insert(CaseEvent), [
                {"case_id": case_id, "kind": kind, "actor": "system", "text": "生成", "data": {}, "created_at": NOW}
                for case_id in case_ids for kind in ("created", "assigned", "accepted")])
            first = first or rows[-1]["number"]
    return first


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"p50 {statistics.median(ordered):6.1f} ms   p95 {p95:6.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database (its name is printed)")
    parser.add_argument("--profile", action="store_true", help="print where the manager's inbox spends its time")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp())
    environ = {"QIBOT_DATA_DIR": str(data), "QIBOT_EMBEDDINGS": "0"}
    name = f"qibot_bench_{uuid.uuid4().hex[:8]}"
    if not args.sqlite:
        import asyncpg

        conn = await asyncpg.connect(args.admin_url)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        environ["QIBOT_DATABASE_URL"] = args.admin_url.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://") + "/" + name
    settings = load_settings(environ=environ)
    runtime = await Runtime.start(settings)
    runtime.dialogue.clock = lambda: NOW
    try:
        async with transaction(runtime.sessions) as session:
            await load_demo(session)
        await add_accounts(runtime)
        started = time.perf_counter()
        number = await generate(runtime, args.cases)
        print(f"{args.cases} cases generated in {time.perf_counter() - started:.0f}s "
              f"({'SQLite' if args.sqlite else 'PostgreSQL'})")
        server = TestServer(create_app(settings, runtime))
        for login in ("wang", "chen", "boss"):
            async with TestClient(server, cookie_jar=CookieJar(unsafe=True)) as client:
                assert (await sign_in(client, login)).status == 303
                for path, label in (("/readyz", "baseline"), ("/console/", "inbox"),
                                    (f"/console/cases/{number}", "case page")):
                    samples = []
                    for _ in range(args.requests):
                        begin = time.perf_counter()
                        response = await client.get(path)
                        await response.read()
                        samples.append((time.perf_counter() - begin) * 1000)
                        assert response.status in (200, 404), response.status
                    print(f"{login:<5} {label:<10} ({response.status}) {percentiles(samples)}")
                if args.profile and login == "boss":
                    profiler = cProfile.Profile()
                    profiler.enable()
                    for _ in range(10):
                        await (await client.get("/console/")).read()
                    profiler.disable()
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            server = TestServer(create_app(settings, runtime))
    finally:
        await runtime.close()
        if args.keep and not args.sqlite:
            print(f"kept database {name}")
        elif not args.sqlite:
            import asyncpg

            conn = await asyncpg.connect(args.admin_url)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
