"""``qibot serve --workers N``: N server processes sharing one port (``SO_REUSEPORT``: the
kernel spreads new connections over them), watched by this parent.

The parent loads nothing heavy and holds the data directory's lock and pid file. It forwards
SIGHUP (``qibot kb reload``) to every worker, and on SIGTERM or Ctrl-C passes SIGTERM on and
waits for each worker's graceful shutdown. A worker that dies (a crash, ``kill -9``) is started
again after a pause that grows while workers keep dying; the others serve meanwhile, and what
the dead one was doing is recovered from the database (an uncommitted turn is re-sent by the
page or retried by WeChat; a claimed delivery comes back when its lease runs out).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
STOP_TIMEOUT = 45.0  # seconds a worker may take to stop gracefully before it is killed


def supervise(argv: list[str], workers: int, pid_file: Path, child_env: str) -> int:
    env = {**os.environ, child_env: "1"}
    procs: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False
    failures = 0

    def start(index: int) -> None:
        # A session of its own: Ctrl-C in a terminal reaches the parent only, which passes one
        # SIGTERM on (a second signal would cut a worker's graceful shutdown short). systemd and
        # Docker stop the whole group anyway if the parent is killed outright.
        procs[index] = subprocess.Popen(argv, env=env, start_new_session=True)

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
            signum = signal.SIGTERM
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    pid_file.write_text(str(os.getpid()))
    try:
        for index in range(workers):
            start(index)
        while not stopping:
            time.sleep(0.5)
            for index, proc in list(procs.items()):
                code = proc.poll()
                if code is None or stopping:
                    continue
                failures += 1
                delay = RESTART_DELAYS[min(failures - 1, len(RESTART_DELAYS) - 1)]
                print(f"qibot: worker {index} (pid {proc.pid}) exited with {code}; starting it again in {delay:g}s",
                      file=sys.stderr, flush=True)
                time.sleep(delay)
                if not stopping:
                    start(index)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return 0
    finally:
        pid_file.unlink(missing_ok=True)
