"""Before and after in one run: the server CPU of a WeChat callback for this checkout and another
one (and the bare wechatpy floor), measured side by side so that a shared machine's changing
load hits every server alike.

Run: ``.venv/bin/python bench/paired.py --before-python /path/to/other/.venv/bin/python
--before-root /path/to/other [--rounds 10] [--messages 100] [--database sqlite|postgres]``

Three servers run at once, each in a session of its own: the floor (``bench/webhook.py --serve
floor``: verify, decrypt, parse, encrypt with wechatpy), the other checkout's full app and this
checkout's (each ``bench/webhook.py --serve full`` of its own tree, run by the given
interpreter, on its own SQLite file or a new PostgreSQL database). Each round sends a block of
signed, encrypted callbacks one at a time to each server in turn (the order alternates between
rounds) and reads the server's CPU (user + system, psutil) before and after its block: CPU per
message. Blocks are short and rounds many, so a burst of other work lands on every target;
reported are the median and the spread over rounds, the after/before ratio and each full app's
CPU against the floor's (for a CPU-bound single process, its throughput relative to the floor).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import webhook  # noqa: E402
from bench.openloop import _create_postgres, _drop_postgres  # noqa: E402


def start(python: str, root: Path, target: str, work: Path, name: str, database_url: str,
          cache_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port_file = work / f"{name}.port"
    cmd = [python, str(root / "bench" / "webhook.py"), "--serve", target, "--port-file", str(port_file),
           "--data-dir", str(work / f"{name}-data"), "--cache-dir", str(cache_dir)]
    if database_url:
        cmd += ["--database-url", database_url]
    proc = subprocess.Popen(cmd, cwd=root, start_new_session=True)
    return proc, webhook.wait_for_port(proc, port_file, name, timeout=240)


async def send(port: int, requests: list[bytes]) -> int:
    """The requests one at a time on one keep-alive connection; how many got an encrypted answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    good = 0
    try:
        for request in requests:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line[15:]) for line in head.split(b"\r\n")[1:]
                           if line[:15].lower() == b"content-length:"), 0)
            body = await reader.readexactly(length)
            good += head.startswith(b"HTTP/1.1 200") and b"<Encrypt>" in body[:40]
    finally:
        writer.close()
    return good


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-python", required=True, help="the interpreter of the other checkout's environment")
    parser.add_argument("--before-root", type=Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--messages", type=int, default=100, help="callbacks per server per round")
    parser.add_argument("--warmup", type=int, default=60, help="callbacks per server before measuring")
    parser.add_argument("--users", type=int, default=webhook.USERS,
                        help="openids the callbacks come from (fewer: known users after the warm-up)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-admin", default=os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache", help="NLU cache (reused)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="qibot-paired-"))
    created: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    targets: dict[str, tuple[psutil.Process, int]] = {}
    try:
        for name, python, root, target in (("floor", sys.executable, ROOT, "floor"),
                                           ("before", args.before_python, args.before_root, "full"),
                                           ("after", sys.executable, ROOT, "full")):
            url = ""
            if target == "full" and args.database == "postgres":
                url, db = _create_postgres(args.postgres_admin)
                created.append(db)
            proc, port = start(python, root, target, work, name, url, args.cache_dir)
            procs.append(proc)
            targets[name] = (psutil.Process(proc.pid), port)
        webhook.USERS = args.users
        # The floor's blocks are ten times longer: its CPU per message is below psutil's 10 ms
        # resolution per block otherwise.
        size = {name: args.messages * (10 if name == "floor" else 1) for name in targets}
        first_id = 10**15 + int(time.time()) * 1000
        requests = {name: webhook.build_requests(port, args.warmup + args.rounds * size[name], first_id)
                    for name, (_, port) in targets.items()}
        per_message: dict[str, list[float]] = {name: [] for name in targets}
        bad = dict.fromkeys(targets, 0)
        for name, (_, port) in targets.items():
            asyncio.run(send(port, requests[name][: args.warmup]))
        load_before = os.getloadavg()[0]
        for r in range(args.rounds):
            order = list(targets) if r % 2 == 0 else list(reversed(targets))
            for name in order:
                process, port = targets[name]
                start_at = args.warmup + r * size[name]
                block = requests[name][start_at : start_at + size[name]]
                before = cpu(process)
                good = asyncio.run(send(port, block))
                per_message[name].append((cpu(process) - before) / len(block) * 1000)
                bad[name] += len(block) - good
        load_after = os.getloadavg()[0]
    finally:
        webhook.stop_servers(procs)
        for db in created:
            _drop_postgres(args.postgres_admin, db)

    print(f"POST /wechat safe mode, one request at a time, {args.rounds} rounds of {args.messages} per server "
          f"(floor {size['floor']}), {args.users} openids, database {args.database}, "
          f"load average {load_before:.1f}/{load_after:.1f} on {os.cpu_count()} CPUs")
    print(f"{'server':8} {'CPU ms/msg median':>18} {'min':>6} {'max':>6} {'bad':>4}")
    median = {name: statistics.median(values) for name, values in per_message.items()}
    for name, values in per_message.items():
        print(f"{name:8} {median[name]:>18.2f} {min(values):>6.2f} {max(values):>6.2f} {bad[name]:>4}")
    ratios = [a / b for a, b in zip(per_message["after"], per_message["before"], strict=True)]
    print(f"after/before CPU per message: median of rounds {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
    for name in ("before", "after"):
        shares = [f / x for f, x in zip(per_message["floor"], per_message[name], strict=True)]
        print(f"{name}: floor CPU / full CPU per message (throughput against the floor, CPU-bound) "
              f"{statistics.median(shares) * 100:.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
