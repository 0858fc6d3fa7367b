"""Start-up time and memory of `qibot serve` and `qibot ask` on the embedded default (SQLite,
bundled knowledge base), whole process, as a user starts them.

Each run uses a fresh data directory (the first start a new installation sees), then a second
start on the same directory. The baseline, measured in the same run, is the code of an earlier
commit (``--baseline-rev``, by default the one before the start-up work of issue 14 point 5's
``ask`` goal: imports of SQLAlchemy by ``ask``, jieba's whole dictionary, spinning OpenMP threads):
``git archive`` of that commit goes first on PYTHONPATH, so the same ``qibot`` script and
virtualenv run the older packages. Besides wall time, ``ask`` reports the process's CPU time
(user + system), which a busy machine inflates far less than wall time. Loopback only; bounded in
time.

    .venv/bin/python bench/startup.py [--runs 3] [--baseline-rev REV | --no-baseline]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
QIBOT = Path(sys.executable).with_name("qibot")
QUESTION = "电子秤要定期送检吗"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(data_dir: Path, extra_path: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIBOT_")}
    env.update({"QIBOT_DATA_DIR": str(data_dir), "QIBOT_LOG_LEVEL": "WARNING"})
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return env


def serve_once(data_dir: Path, extra_path: Path | None, timeout: float = 120.0) -> tuple[float, float]:
    """Seconds until /readyz answers 200, and the server's resident memory then (MiB)."""
    port = free_port()
    env = environment(data_dir, extra_path) | {"QIBOT_PORT": str(port)}
    started = time.perf_counter()
    process = subprocess.Popen([str(QIBOT), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"qibot serve exited: {stderr[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                    if response.status == 200:
                        elapsed = time.perf_counter() - started
                        return elapsed, psutil.Process(process.pid).memory_info().rss / 2**20
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("qibot serve did not become ready")
    finally:
        process.terminate()
        process.wait(timeout=10)


def ask_once(data_dir: Path, extra_path: Path | None) -> tuple[float, float]:
    """Seconds for `qibot ask QUESTION` from exec to exit (it must answer), and the CPU seconds
    (user + system) the process used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([str(QIBOT), "ask", QUESTION], env=environment(data_dir, extra_path),
                          capture_output=True, text=True, timeout=180, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"qibot ask failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


#: The last commit before the `ask` work (lazy database imports, jieba by first character,
#: passive OpenMP threads).
DEFAULT_BASELINE = "535c3a5"


def baseline_tree(rev: str) -> Path:
    """A PYTHONPATH entry holding the packages of commit ``rev`` (git archive)."""
    folder = Path(tempfile.mkdtemp(prefix="qibot-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "bot", "handlers", "intents", "knowledge"],
                             capture_output=True, check=True, timeout=120).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True, timeout=120)
    return folder


def measure(start: Callable[[Path, Path | None], tuple[float, float]], runs: int,
            extra_path: Path | None) -> tuple[list[float], list[float], list[float]]:
    """(first starts on fresh data dirs, second starts, the second figure of the first starts:
    RSS in MiB for serve, CPU seconds for ask)."""
    first, second, other = [], [], []
    for _ in range(runs):
        data_dir = Path(tempfile.mkdtemp(prefix="qibot-startup-"))
        try:
            seconds, figure = start(data_dir, extra_path)
            first.append(seconds)
            other.append(figure)
            second.append(start(data_dir, extra_path)[0])
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    return first, second, other


def line(label: str, values: list[float]) -> str:
    return f"  {label:<44} median {statistics.median(values):6.2f} s  (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-rev", default=DEFAULT_BASELINE, help="commit to compare with (git archive)")
    parser.add_argument("--no-baseline", action="store_true", help="measure this tree only")
    args = parser.parse_args()
    baseline_path = None if args.no_baseline else baseline_tree(args.baseline_rev)
    results = {}
    try:
        for name, start in (("serve", serve_once), ("ask", ask_once)):
            results[name] = measure(start, args.runs, None)
            if baseline_path is not None:
                results[name + "-baseline"] = measure(start, args.runs, baseline_path)
    finally:
        if baseline_path is not None:
            shutil.rmtree(baseline_path, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"whole-process start-up, SQLite default, bundled knowledge base, {args.runs} runs each "
          f"({os.cpu_count()} CPUs, load average {load:.1f} at the end)")
    for name, what in (("serve", "qibot serve until /readyz = 200"), ("ask", f"qibot ask {QUESTION!r}")):
        first, second, other = results[name]
        extra = f", RSS {statistics.median(other):.0f} MiB" if name == "serve" else \
            f", CPU {statistics.median(other):.2f} s"
        print(f"{what}:")
        print(line("fresh data dir (this tree)", first) + extra)
        print(line("second start, same data dir", second))
        if name + "-baseline" in results:
            base_first, base_second, base_other = results[name + "-baseline"]
            base_extra = f", RSS {statistics.median(base_other):.0f} MiB" if name == "serve" else \
                f", CPU {statistics.median(base_other):.2f} s"
            print(line(f"fresh data dir (baseline {args.baseline_rev})", base_first) + base_extra)
            print(line("second start, same data dir (baseline)", base_second))
            ratio = statistics.median(base_first) / statistics.median(first)
            text = f"  fresh data dir: wall {ratio:.2f}x the baseline's speed"
            if name == "ask":
                text += f", CPU {statistics.median(base_other) / statistics.median(other):.2f}x"
            print(text)


if __name__ == "__main__":
    main()
