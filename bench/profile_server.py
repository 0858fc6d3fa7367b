"""Where a WeChat callback's CPU goes in the whole server: a profile of ``bench/webhook.py``'s
full app (channel, engine, database) over signed, encrypted callbacks sent one at a time.

Run: ``.venv/bin/python bench/profile_server.py [--messages 600] [--users 100] [--database-url URL]
[--cprofile] [--html FILE]``

``bench/profile_turn.py`` profiles the engine alone; this adds what a callback costs around it
(the HTTP server, decryption, XML, the security headers, the reply's encryption). The server runs
in its own process; it is warmed up with 200 callbacks, then profiled over ``--messages`` more,
from ``--users`` openids (100: mostly known users; 5000: mostly first contacts). Default output is
pyinstrument's call tree (wall time; a statement's wait for the database counts). ``--cprofile``
uses cProfile with a thread-CPU timer instead and prints the functions by own and cumulative CPU
(inflated ~3x by the profiler, so read shares, not milliseconds). Prints the server's CPU per
callback under the profiler too.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import webhook  # noqa: E402
from bench.paired import send  # noqa: E402


def serve(port_file: Path, data_dir: Path, cache_dir: Path, database_url: str, out: Path, use_cprofile: bool,
          html: Path | None) -> None:
    """The profiled server: SIGUSR1 starts the profiler, SIGUSR2 stops it and writes the report."""
    profiler: Any
    if use_cprofile:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)
    else:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)

    def start() -> None:
        (profiler.enable if use_cprofile else profiler.start)()

    def stop() -> None:
        if use_cprofile:
            import pstats

            profiler.disable()
            buffer = io.StringIO()
            stats = pstats.Stats(profiler, stream=buffer)
            stats.sort_stats("tottime").print_stats(50)
            stats.sort_stats("cumulative").print_stats(r"(bot|handlers|intents|knowledge)[/\\]", 80)
            out.write_text(buffer.getvalue(), encoding="utf-8")
        else:
            profiler.stop()
            out.write_text(profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8")
            if html is not None:
                html.write_text(profiler.output_html(), encoding="utf-8")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, start)
        loop.add_signal_handler(signal.SIGUSR2, stop)
        await webhook.serve_full(port_file, data_dir, cache_dir, database_url=database_url)

    asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--users", type=int, default=100, help="openids the callbacks come from")
    parser.add_argument("--database-url", default="",
                        help="an empty, disposable database (default: SQLite in a temp dir)")
    parser.add_argument("--cprofile", action="store_true",
                        help="cProfile with a thread-CPU timer instead of pyinstrument")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache", help="NLU cache (reused)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port_file, args.data_dir, args.cache_dir, args.database_url, args.out, args.cprofile, args.html)
        return 0

    work = Path(tempfile.mkdtemp(prefix="qibot-profile-server-"))
    out, port_file = work / "profile.txt", work / "port"
    cmd = [sys.executable, __file__, "--serve", "--port-file", str(port_file), "--data-dir", str(work / "data"),
           "--out", str(out), "--cache-dir", str(args.cache_dir), "--database-url", args.database_url]
    if args.cprofile:
        cmd.append("--cprofile")
    if args.html is not None:
        cmd += ["--html", str(args.html.resolve())]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    try:
        port = webhook.wait_for_port(proc, port_file, "profiled", timeout=240)
        webhook.USERS = args.users
        warmup = 200
        requests = webhook.build_requests(port, warmup + args.messages, 10**15 + int(time.time()) * 1000)
        asyncio.run(send(port, requests[:warmup]))
        server = psutil.Process(proc.pid)
        os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(0.2)
        cpu = sum(server.cpu_times()[:2])
        good = asyncio.run(send(port, requests[warmup:]))
        cpu = sum(server.cpu_times()[:2]) - cpu
        os.kill(proc.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        webhook.stop_servers([proc])
    print(f"{good}/{args.messages} callbacks answered passively; server CPU per callback under the profiler "
          f"{cpu / args.messages * 1000:.2f} ms; {args.users} openids")
    print(out.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
