"""Start-up time and memory of `qibot serve` on the embedded default (SQLite, bundled KB).

Runs the real command in a fresh data directory: the first start builds the NLU cache and the
database; later starts reuse them. Reports time until /readyz answers 200, and the resident
memory of the server process once ready. Loopback only; bounded in time.

    .venv/bin/python bench/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

QIBOT = Path(sys.executable).with_name("qibot")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_once(data_dir: Path, timeout: float = 60.0) -> tuple[float, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIBOT_")}
    env.update({"QIBOT_DATA_DIR": str(data_dir), "QIBOT_PORT": str(port), "QIBOT_LOG_LEVEL": "WARNING"})
    started = time.perf_counter()
    process = subprocess.Popen([str(QIBOT), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"qibot serve exited: {process.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                    if response.status == 200:
                        elapsed = time.perf_counter() - started
                        rss = psutil.Process(process.pid).memory_info().rss / 2**20
                        return elapsed, rss
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("qibot serve did not become ready")
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="qibot-startup-"))
    try:
        cold_time, cold_rss = start_once(data_dir)
        warm = [start_once(data_dir) for _ in range(args.runs)]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print("qibot serve start-up (until /readyz = 200), SQLite default, bundled knowledge base")
    print(f"  first start (empty data dir: migrations + NLU training + cache): {cold_time:.2f} s, "
          f"RSS {cold_rss:.0f} MiB")
    times = [t for t, _ in warm]
    rss = [m for _, m in warm]
    print(f"  later starts ({args.runs} runs): median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}), RSS median {statistics.median(rss):.0f} MiB")


if __name__ == "__main__":
    main()
