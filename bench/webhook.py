"""WeChat webhook bench: ``POST /wechat`` in safe mode, the full app against a bare floor.

Run: ``.venv/bin/python bench/webhook.py [--seconds 5] [--concurrency 50,200]``
(one run, about a minute; loopback only; prints numbers).

Three servers, each in its own process, measured one after the other on 127.0.0.1:
  floor    a bare aiohttp endpoint that verifies msg_signature, decrypts, parses and encrypts a
           fixed reply with wechatpy: the least any safe-mode endpoint must do;
  channel  the real app with the dialogue engine replaced by a stub answering at once: what the
           WeChat channel itself costs (checks, parsing, in-flight map, XML, encryption);
  full     the real app (``bot.app.create_app``) with the real runtime on SQLite in a temp dir:
           the WeChat channel, the dialogue engine (NLU, handlers, knowledge base) and the database.
The load generator is a closed loop of N keep-alive connections speaking raw HTTP/1.1 (cheaper
than an HTTP client library, so it does not cap the floor), with requests signed and encrypted
by wechatpy beforehand. Every request comes from one of 5,000 openids with a distinct MsgId and
one of a few dozen realistic questions, so the engine really stores and answers each message.
Reported: messages/second, p50/p99 latency, non-200 or non-passive answers, and the server
processes' CPU use (100 % = one core busy: the server, not the client, is the limit).
``--workers N`` runs the full app as N processes sharing the port (SO_REUSEPORT), as a deployment
with several workers would; the floor stays one process.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "benchToken123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx0000000000bench"
ACCOUNT = "gh_bench"
USERS = 5000
TEXTS = [
    "电子秤要不要强制检定", "CCC认证怎么办理", "你好", "谢谢", "菜单", "我的需求进度", "质量讲堂",
    "加油机需要多久检定一次", "ISO9001认证需要什么材料", "商标注册流程是什么", "检测报告多久能出",
    "首席质量官培训什么时候报名", "我们公司想申请质量奖", "产品标准怎么备案", "计量器具型式批准",
    "实验室资质认定CMA怎么申请", "能帮我找个检测机构吗", "今天天气怎么样", "企业标准自我声明公开怎么做",
    "出口产品需要哪些认证", "压力表检定周期多长", "食品生产许可证怎么办", "知识产权贯标有补贴吗",
    "品牌建设有什么政策支持",
]


# --- servers (run in their own process) ------------------------------------------------------


async def serve_floor(port_file: Path) -> None:
    from aiohttp import web
    from wechatpy import parse_message
    from wechatpy.crypto import WeChatCrypto

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)

    async def handle(request: web.Request) -> web.Response:
        q = request.query
        xml = crypto.decrypt_message(await request.text(), q["msg_signature"], q["timestamp"], q["nonce"])
        message = parse_message(xml)
        reply = (
            f"<xml><ToUserName><![CDATA[{message.source}]]></ToUserName><FromUserName><![CDATA[{message.target}]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[收到]]></Content></xml>"
        )
        return web.Response(text=crypto.encrypt_message(reply, q["nonce"]), content_type="application/xml")

    app = web.Application()
    app.router.add_post("/wechat", handle)
    await _run(app, port_file)


async def serve_full(port_file: Path, data_dir: Path, cache_dir: Path, stub_engine: bool = False,
                     database_url: str = "", port: int = 0) -> None:
    from aiohttp import web  # noqa: F401  (imported for symmetry; create_app builds the app)

    from bot.app import create_app
    from bot.config import load_settings
    from bot.runtime import Runtime
    from intents.classifier import Nlu

    settings = load_settings(
        environ={
            "QIBOT_DATA_DIR": str(data_dir),
            "QIBOT_DATABASE_URL": database_url,
            "QIBOT_WECHAT_TOKEN": TOKEN,
            "QIBOT_WECHAT_AES_KEY": AES_KEY,
            "QIBOT_WECHAT_APP_ID": APP_ID,
            "QIBOT_WECHAT_APP_SECRET": "bench-secret",
            # Never contacted: every answer is passive within the budget, and no dispatcher runs.
            "QIBOT_WECHAT_API_BASE_URL": "http://127.0.0.1:9",
        }
    )
    nlu = await asyncio.to_thread(Nlu.load, cache_dir)  # a warm cache: no training in the bench
    runtime = await Runtime.start(settings, nlu=nlu)
    if stub_engine:  # the channel's own cost: everything but the dialogue engine and its database
        from bot.messages import Reply, TurnResult

        answer = TurnResult((Reply("依据《计量法》，用于贸易结算的电子秤属于强制检定的工作计量器具。"),))

        async def handle(message: object) -> TurnResult:
            return answer

        runtime.dialogue.handle = handle  # type: ignore[method-assign]
    try:
        await _run(create_app(settings, runtime), port_file, port)
    finally:
        await runtime.close()


async def _run(app: object, port_file: Path, port: int = 0) -> None:
    from aiohttp import web

    assert isinstance(app, web.Application)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # A given port is shared by several worker processes (SO_REUSEPORT: the kernel spreads connections).
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024, reuse_port=bool(port))
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    partial = port_file.with_suffix(".tmp")
    await asyncio.to_thread(partial.write_text, str(port))
    await asyncio.to_thread(partial.rename, port_file)  # the parent never reads half a number
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


# --- load generator --------------------------------------------------------------------------


@dataclass
class Result:
    target: str
    concurrency: int
    messages: int
    seconds: float
    p50: float
    p99: float
    bad: int
    cpu: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def build_requests(port: int, count: int, first_id: int) -> list[bytes]:
    """Signed, encrypted callbacks, built before the clock starts."""
    from wechatpy.crypto import WeChatCrypto

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    now = str(int(time.time()))
    requests = []
    for i in range(count):
        msg_id = first_id + i
        openid = f"oBench{hashlib.sha1(str(msg_id % USERS).encode()).hexdigest()[:22]}"
        inner = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{TEXTS[i % len(TEXTS)]}]]></Content><MsgId>{msg_id}</MsgId></xml>"
        )
        nonce = uuid.uuid4().hex[:10]
        envelope = crypto.encrypt_message(inner, nonce, now)
        cipher = envelope.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]
        msg_signature = envelope.split("<MsgSignature><![CDATA[", 1)[1].split("]]>", 1)[0]
        body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{cipher}]]></Encrypt></xml>"
        signature = hashlib.sha1("".join(sorted((TOKEN, now, nonce))).encode()).hexdigest()
        path = (f"/wechat?signature={signature}&timestamp={now}&nonce={nonce}&openid={openid}"
                f"&encrypt_type=aes&msg_signature={msg_signature}")
        data = body.encode()
        requests.append(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode() + data
        )
    return requests


def _cpu_seconds(servers: list[psutil.Process]) -> float:
    return sum(sum(server.cpu_times()[:2]) for server in servers)


async def load(port: int, requests: list[bytes], concurrency: int, seconds: float, warmup: float,
               servers: list[psutil.Process]) -> tuple[int, float, list[float], int, float]:
    latencies: list[float] = []
    bad = 0
    index = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    counted = 0
    cpu_start: float | None = None

    async def connection() -> None:
        nonlocal index, bad, counted, cpu_start
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while index < len(requests):
                now = loop.time()
                if now >= stop_at:
                    return
                request = requests[index]
                index += 1
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                elapsed = time.perf_counter() - sent
                if loop.time() >= measure_from:
                    if cpu_start is None:
                        cpu_start = _cpu_seconds(servers)
                    counted += 1
                    latencies.append(elapsed)
                    if not head.startswith(b"HTTP/1.1 200") or b"<Encrypt>" not in body[:40]:
                        bad += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    wall = min(loop.time(), stop_at) - measure_from
    cpu = (_cpu_seconds(servers) - (cpu_start or 0.0)) / wall if wall > 0 else 0.0
    return counted, wall, latencies, bad, cpu


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(proc: subprocess.Popen[bytes], port_file: Path, name: str, timeout: float) -> int:
    """The port a server started by a bench wrote to ``port_file`` (whole: it is renamed into
    place); kills it and exits when it died or did not start within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not port_file.exists() or not port_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the {name} server did not start")
        time.sleep(0.1)
    return int(port_file.read_text())


def stop_servers(procs: list[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    """SIGTERM to every server first (they shut down gracefully side by side), then wait for each;
    one still running after ``timeout`` seconds is killed."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def start_server(
    target: str, work: Path, cache_dir: Path, profile: Path | None, database_url: str, port: int = 0, worker: int = 0,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    port_file = work / f"{target}-{worker}.port"
    port_file.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--serve", target, "--port-file", str(port_file),
           "--data-dir", str(work / f"{target}-data"), "--cache-dir", str(cache_dir), "--port", str(port)]
    if profile is not None:
        cmd += ["--profile", str(profile.resolve())]
    if database_url:
        cmd += ["--database-url", database_url]
    # A session of its own: Linux's autogroup scheduling (on here) shares the CPU fairly between
    # sessions, so a server in the load generator's session would share one session's slice with
    # it; on its own it competes as a separately started service does.
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, start_new_session=True)
    return proc, wait_for_port(proc, port_file, target, timeout=180)


def start_qibot_serve(work: Path, cache_dir: Path, database_url: str, workers: int
                      ) -> tuple[subprocess.Popen[bytes], int, list[psutil.Process]]:
    """The real ``qibot serve --workers N`` (PostgreSQL and Redis when N > 1: a deployment's
    shape), with the bench's WeChat account; the schema migrated first as the one-shot migrate
    does. Returns the parent, the port, and every process that serves (the workers and the
    parent) once all workers listen."""
    import shutil
    import urllib.request

    data = work / "qibot-data"
    if cache_dir.is_dir() and not (data / "cache").exists():
        shutil.copytree(cache_dir, data / "cache")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIBOT_")}
    env.update({
        "QIBOT_DATA_DIR": str(data), "QIBOT_PORT": str(port), "QIBOT_LOG_LEVEL": "WARNING",
        "QIBOT_DATABASE_URL": database_url, "QIBOT_WECHAT_TOKEN": TOKEN, "QIBOT_WECHAT_AES_KEY": AES_KEY,
        "QIBOT_WECHAT_APP_ID": APP_ID, "QIBOT_WECHAT_APP_SECRET": "bench-secret",
        "QIBOT_WECHAT_API_BASE_URL": "http://127.0.0.1:9",
        "QIBOT_REDIS_URL": REDIS_URL if workers > 1 else "",
        "QIBOT_REDIS_PREFIX": f"qibot-bench-{os.getpid()}-{port}",
    })
    qibot = Path(sys.executable).with_name("qibot")
    subprocess.run([str(qibot), "db", "upgrade"], env=env, cwd=work, check=True, capture_output=True)
    proc = subprocess.Popen([str(qibot), "serve", "--workers", str(workers)], env=env, cwd=work,
                            start_new_session=True)  # as start_server; the workers have sessions of their own
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 240
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("qibot serve did not start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                ready = response.status == 200
        except OSError:
            ready = False
        children = parent.children() if workers > 1 else [parent]
        if ready and len(children) >= workers and all(_listens(child, port) for child in children):
            break
        time.sleep(0.2)
    return proc, port, ([parent, *children] if workers > 1 else [parent])


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _listens(process: psutil.Process, port: int) -> bool:
    try:
        return any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
                   for c in process.net_connections(kind="tcp"))
    except psutil.Error:
        return False


def scrape_stages(port: int) -> dict[str, float]:
    """The server's CPU seconds by stage and its turn count, from its own /metrics."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, float] = {"turns": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "qibot_turn_stage_cpu_seconds_total":
                out[sample.labels["stage"]] = sample.value
            elif sample.name == "qibot_turns_total":
                out["turns"] += sample.value
    return out


def stage_costs(port: int, requests: list[bytes], seconds: float, servers: list[psutil.Process]) -> dict[str, float]:
    """CPU per turn by stage (ms), one request at a time so each turn's thread CPU is its own,
    with the server process's CPU per turn over the same requests."""
    before = scrape_stages(port)
    cpu_before = _cpu_seconds(servers)
    asyncio.run(load(port, requests, 1, seconds, 0.0, servers))
    cpu = _cpu_seconds(servers) - cpu_before
    after = scrape_stages(port)
    turns = after["turns"] - before["turns"]
    costs = {k: (after.get(k, 0.0) - before.get(k, 0.0)) / turns * 1000 for k in after if k != "turns"}
    costs["process"] = cpu / turns * 1000
    return costs


def check_one_reply(port: int, requests: list[bytes]) -> str:
    """Decrypt one answer of the full app with wechatpy: the bench measures real answers."""
    import xmltodict
    from wechatpy.crypto import WeChatCrypto

    async def one() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(requests[0])
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(h[15:]) for h in head.split(b"\r\n") if h[:15].lower() == b"content-length:")
        body = await reader.readexactly(length)
        writer.close()
        return body

    body = asyncio.run(one()).decode()
    doc = xmltodict.parse(body)["xml"]
    inner = WeChatCrypto(TOKEN, AES_KEY, APP_ID).decrypt_message(body, doc["MsgSignature"], doc["TimeStamp"],
                                                                  doc["Nonce"])
    return str(xmltodict.parse(inner)["xml"]["Content"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run (after warm-up)")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", default="50,200")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache", help="NLU cache (reused)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the full server to this file")
    parser.add_argument("--database-url", default="",
                        help="run the full app on this (empty, disposable) database instead of SQLite in a temp dir")
    parser.add_argument("--serve", choices=("floor", "channel", "full"), help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1,
                        help="run the full app as this many processes sharing the port (SO_REUSEPORT); the floor "
                             "stays one process")
    parser.add_argument("--qibot-serve", action="store_true",
                        help="run the full app as the real `qibot serve --workers N` (forked workers; PostgreSQL "
                             "and Redis when N > 1) instead of the bench's own server processes")
    parser.add_argument("--compare-blas", action="store_true",
                        help="also run the full app with one BLAS thread per CPU (before bot/runtime.py limited it)")
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    if args.serve == "floor":
        asyncio.run(serve_floor(args.port_file))
        return 0
    if args.serve == "channel":
        asyncio.run(serve_full(args.port_file, args.data_dir, args.cache_dir, stub_engine=True, port=args.port))
        return 0
    if args.serve == "full":
        if args.profile:
            import cProfile

            with cProfile.Profile() as profile:
                asyncio.run(serve_full(args.port_file, args.data_dir, args.cache_dir, database_url=args.database_url,
                                       port=args.port))
            profile.dump_stats(args.profile)
        else:
            asyncio.run(serve_full(args.port_file, args.data_dir, args.cache_dir, database_url=args.database_url,
                                   port=args.port))
        return 0

    levels = [int(c) for c in args.concurrency.split(",")]
    results: list[Result] = []
    stages: dict[str, dict[str, float]] = {}
    sample = ""
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="qibot-bench-") as tmp:
        work = Path(tmp)
        next_id = 10**15
        targets = ["floor", "channel", *(["full-blasN"] if args.compare_blas else []), "full"]
        for target in targets:
            procs: list[subprocess.Popen[bytes]] = []
            full = target.startswith("full")
            serve_as = "full" if full else target
            # full-blasN: the full app as before bot/runtime.py limited BLAS to one thread
            env = {"OPENBLAS_NUM_THREADS": str(os.cpu_count() or 1)} if target == "full-blasN" else {}
            workers = args.workers if full else 1
            (work / target).mkdir()
            shared_port = _free_port() if workers > 1 else 0
            if full and args.qibot_serve:
                proc, port, servers = start_qibot_serve(work / target, args.cache_dir, args.database_url, workers)
                procs.append(proc)
            else:
                for worker in range(workers):  # one after the other: the first applies the migrations
                    proc, port = start_server(serve_as, work / target, args.cache_dir,
                                              args.profile if full else None, args.database_url if full else "",
                                              shared_port, worker, env)
                    procs.append(proc)
                servers = [psutil.Process(proc.pid) for proc in procs]
            try:
                if full:
                    probe = build_requests(port, 1, next_id)
                    next_id += 1
                    sample = check_one_reply(port, probe)
                    if workers == 1:
                        requests = build_requests(port, 5000, next_id)
                        next_id += 5000
                        stages[target] = stage_costs(port, requests, args.seconds, servers)
                for concurrency in levels:
                    count = 20_000 if full else 60_000
                    requests = build_requests(port, count, next_id)
                    next_id += count
                    n, wall, lat, bad, cpu = asyncio.run(
                        load(port, requests, concurrency, args.seconds, args.warmup, servers)
                    )
                    if n == 0:
                        raise SystemExit(f"{target} at {concurrency}: no answers measured")
                    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
                    results.append(Result(target, concurrency, n, wall, q[49] * 1000, q[98] * 1000, bad, cpu))
                    if n >= count - concurrency:
                        print(f"note: {target} at {concurrency} used all {count} prepared requests", file=sys.stderr)
            finally:
                stop_servers(procs)

    print(f"POST /wechat, safe mode, loopback, {args.seconds:.0f} s per run after {args.warmup:.0f} s warm-up, "
          f"{os.cpu_count()} CPUs, load average before/after {load_before:.1f}/{os.getloadavg()[0]:.1f}")
    database = args.database_url.split("://", 1)[0] if args.database_url else "SQLite in a temp dir"
    print("floor = wechatpy decrypt+parse+encrypt only; channel = the real app with the engine stubbed out; "
          f"full = the real app, engine and database ({database}), {args.workers} process(es)")
    print(f"sample answer of the full app: {sample[:60]!r}")
    print(f"{'target':<11}{'conns':>6}{'msgs/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'bad':>6}{'server CPU':>12}")
    for r in results:
        print(f"{r.target:<11}{r.concurrency:>6}{r.rate:>10.0f}{r.p50:>9.1f}{r.p99:>9.1f}{r.bad:>6}{r.cpu:>11.0%}")
    for target, costs in stages.items():
        print(f"{target}: server CPU per turn by stage, one request at a time (ms): "
              + ", ".join(f"{name} {costs.get(name, 0.0):.2f}" for name in ("channel", "nlu", "knowledge", "database",
                                                                          "handler"))
              + f"; stages {sum(costs.get(n, 0.0) for n in ('channel', 'nlu', 'knowledge', 'database', 'handler')):.2f}"
              + f", whole server process {costs['process']:.2f}")
    for concurrency in levels:
        floor, channel, full = (next(r for r in results if r.target == t and r.concurrency == concurrency)
                                for t in ("floor", "channel", "full"))
        print(f"at {concurrency} connections: full/floor throughput {full.rate / floor.rate:.0%} (goal ≥ 40%), "
              f"channel/floor {channel.rate / floor.rate:.0%}; full p99 {full.p99:.0f} ms (goal < 200 ms at 200)")
    print(f"bench wall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
