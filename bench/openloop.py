"""Open-loop latency of one server process: messages arrive on a fixed schedule, whatever the answers do.

Run: ``.venv/bin/python bench/openloop.py [--rates 25,50,100] [--seconds 20] [--database sqlite,postgres]``
(loopback only; bounded in count and time; prints numbers).

A closed-loop bench (``bench/webhook.py``) sends the next request when an answer comes back, so a
slow answer also delays the requests behind it and the slow period is under-sampled ("coordinated
omission"). Here message ``i`` of a run at ``R`` messages/s is due at ``start + i / R``; it is sent
then on an idle keep-alive connection or a new one (never waiting for an earlier answer), and its
latency is measured **from the time it was due**, so a late send, a queue in the server or a
stalled event loop all count. Every message is a signed, encrypted WeChat safe-mode callback
(``POST /wechat``, built by ``bench/webhook.py`` before the clock starts) from one of 5,000
openids with its own MsgId and a realistic question, so the engine stores and answers each one.

One server process (``bench/webhook.py --serve full``: ``bot.app.create_app`` with the real
runtime) per database: SQLite in a temp dir, and PostgreSQL in a new database created on
``--postgres-admin`` and dropped afterwards. Each rate runs ``--warmup`` seconds (not counted) then
``--seconds`` measured seconds. Reported per rate: messages sent and answered, bad answers (not a
passive encrypted reply: a timeout, an error, or an empty body because the turn outlived WeChat's
reply budget and was pushed instead), p50/p90/p99/max latency from the due time, how late the
client itself sent (its own lag, to tell a slow client from a slow server), the server's CPU
(100 % = one core) and the machine's load average, which matters: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import webhook  # noqa: E402  (bench/webhook.py: the server process and the signed requests)

REQUEST_TIMEOUT = 10.0  # seconds: an answer later than this counts as bad, with this latency
MAX_CONNECTIONS = 2000  # a server that stops answering gets at most this many connections


@dataclass
class Run:
    database: str
    rate: float
    sent: int = 0
    ok: int = 0
    bad: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, from the due time, measured part only
    lag: list[float] = field(default_factory=list)  # seconds the client sent after the due time
    seconds: float = 0.0
    cpu: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)
    connections: int = 0
    pushed: float = 0.0

    def quantile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return head, await reader.readexactly(length)


async def open_loop(port: int, requests: list[bytes], rate: float, warmup: float, seconds: float,
                    server: psutil.Process, run: Run) -> None:
    """Send ``requests[i]`` at ``start + i / rate`` for ``warmup + seconds``; count the measured part."""
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened: list[asyncio.StreamWriter] = []
    total = int((warmup + seconds) * rate)
    measured_from = int(warmup * rate)
    if total > len(requests):
        raise SystemExit(f"only {len(requests)} requests prepared for {total}")
    start = loop.time() + 0.05
    cpu_start: float | None = None
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int, due: float) -> None:
        counted = i >= measured_from
        try:
            if idle:
                reader, writer = idle.pop()
            else:
                if len(opened) >= MAX_CONNECTIONS:
                    raise ConnectionError("connection cap reached")
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                opened.append(writer)
            if counted:
                run.lag.append(loop.time() - due)
            writer.write(requests[i])
            head, body = await asyncio.wait_for(_answer(reader), REQUEST_TIMEOUT)
            latency = loop.time() - due
            good = head.startswith(b"HTTP/1.1 200") and b"<Encrypt>" in body[:40]
            idle.append((reader, writer))
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ConnectionError):
            latency, good = loop.time() - due, False
        if counted:
            run.latencies.append(latency)
            run.ok += good
            run.bad += not good

    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if i == measured_from:
            cpu_start = webhook._cpu_seconds([server])
            load_start = os.getloadavg()[0]
            measured_start = loop.time()
        tasks.append(asyncio.create_task(one(i, due)))
    run.sent = total - measured_from
    await asyncio.gather(*tasks)
    run.seconds = loop.time() - measured_start
    run.cpu = (webhook._cpu_seconds([server]) - (cpu_start or 0.0)) / run.seconds
    run.load = (load_start, os.getloadavg()[0])
    run.connections = len(opened)
    for writer in opened:
        writer.close()


def _pushed(port: int) -> float:
    """WeChat answers the server had to push (the turn outlived the passive reply budget)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "qibot_wechat_replies_total" and sample.labels.get("mode") == "pushed")


def _create_postgres(admin_url: str) -> tuple[str, str]:
    """A new, empty database on the admin URL's server: (its URL, its name)."""
    import asyncpg

    name = f"qibot_openloop_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    plain = admin_url.replace("postgresql+asyncpg://", "postgresql://")

    async def create() -> None:
        conn = await asyncpg.connect(plain)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def _drop_postgres(admin_url: str, name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def bench_database(database: str, rates: list[float], args: argparse.Namespace, first_id: int) -> list[Run]:
    runs: list[Run] = []
    database_url, created = "", ""
    if database == "postgres":
        database_url, created = _create_postgres(args.postgres_admin)
    try:
        with tempfile.TemporaryDirectory(prefix="qibot-openloop-") as tmp:
            work = Path(tmp)
            proc, port = webhook.start_server("full", work, args.cache_dir, None, database_url)
            server = psutil.Process(proc.pid)
            try:
                sample = webhook.check_one_reply(port, webhook.build_requests(port, 1, first_id))
                print(f"{database}: sample answer {sample[:40]!r}", flush=True)
                next_id = first_id + 1
                for rate in rates:
                    count = int((args.warmup + args.seconds) * rate) + 1
                    requests = webhook.build_requests(port, count, next_id)
                    next_id += count
                    run = Run(database, rate)
                    pushed_before = _pushed(port)
                    asyncio.run(open_loop(port, requests, rate, args.warmup, args.seconds, server, run))
                    run.pushed = _pushed(port) - pushed_before
                    runs.append(run)
                    print(f"  {rate:g}/s done: p99 {run.quantile(0.99):.1f} ms, {run.bad} bad", flush=True)
                    time.sleep(1.0)  # let answers pushed after the budget settle before the next rate
            finally:
                webhook.stop_servers([proc], timeout=30)
    finally:
        if created:
            _drop_postgres(args.postgres_admin, created)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="25,50,100", help="messages per second, comma-separated, run in order")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at the rate before measuring")
    parser.add_argument("--database", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--postgres-admin", default=os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL URL allowed to CREATE DATABASE (a new one is made per run and dropped)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache", help="NLU cache (reused)")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    if max(rates) * (args.seconds + args.warmup) > 20_000:
        raise SystemExit("bounded bench: at most 20,000 messages per rate")
    started = time.monotonic()
    runs: list[Run] = []
    first_id = 10**15 + int(time.time()) * 1000
    for database in args.database.split(","):
        runs += bench_database(database, rates, args, first_id)
        first_id += 10**6
    print(f"\nopen loop, POST /wechat safe mode, one server process, loopback; {args.seconds:g} s measured per rate "
          f"after {args.warmup:g} s warm-up; latency from the scheduled send time; {os.cpu_count()} CPUs")
    print(f"{'database':<10}{'rate/s':>7}{'sent':>6}{'ok':>6}{'bad':>5}{'pushed':>7}{'p50 ms':>8}{'p90 ms':>8}"
          f"{'p99 ms':>8}{'max ms':>8}{'lag p99':>8}{'conns':>6}{'srv CPU':>8}{'CPU/msg':>8}{'load':>11}")
    for r in runs:
        lag99 = sorted(r.lag)[int(0.99 * (len(r.lag) - 1))] * 1000 if r.lag else 0.0
        print(f"{r.database:<10}{r.rate:>7g}{r.sent:>6}{r.ok:>6}{r.bad:>5}{r.pushed:>7.0f}{r.quantile(0.5):>8.1f}"
              f"{r.quantile(0.9):>8.1f}{r.quantile(0.99):>8.1f}{max(r.latencies) * 1000:>8.1f}{lag99:>8.1f}"
              f"{r.connections:>6}{r.cpu:>8.0%}{r.cpu * 1000 / r.rate:>6.1f}ms{r.load[0]:>5.1f}/{r.load[1]:<5.1f}")
    print("goal: 100 messages/s with p99 < 50 ms on one process. srv CPU: the server process's CPU (100 % = one "
          "core); CPU/msg: that over the rate (the whole process's cost of a message, when it keeps up); "
          "lag: how late the client itself sent; load: the machine's 1-minute load average before/after")
    print(f"bench wall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
