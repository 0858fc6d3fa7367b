"""``qibot serve --workers N``: N server processes sharing one port (``SO_REUSEPORT``: the
kernel spreads new connections over them), watched by this parent.

``qibot serve`` passes ``fork_worker``: the parent then imports the service and loads the NLU
and the knowledge base once, freezes the garbage collector's view of them (``gc.freeze()``),
and forks the workers, which start with those pages shared copy-on-write instead of each loading
its own copy (the read-only model arrays and dictionaries stay shared; what a worker touches
later, its caches and its database connections, becomes its own). A restarted worker is forked
from the same loaded parent, so it is serving again in well under a second. Without
``fork_worker`` each worker is a fresh ``argv`` process.

The parent holds the data directory's lock and pid file and opens no database, event loop or
socket of its own, so nothing a worker uses is shared by accident. It forwards
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
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
STOP_TIMEOUT = 45.0  # seconds a worker may take to stop gracefully before it is killed


class Forked:
    """A forked worker, with the part of :class:`subprocess.Popen`'s interface used here."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already
                self.returncode = -1
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(0.05)
        return code


def fork(run: Callable[[], int], child_env: str) -> Forked:
    """Fork a worker running ``run()``; it never returns into the parent's code (``os._exit``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return Forked(pid)
    code = 1
    try:
        os.setsid()  # as start_new_session: see start() below
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ[child_env] = "1"
        code = run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def supervise(argv: list[str], workers: int, pid_file: Path, child_env: str,
              fork_worker: Callable[[], int] | None = None) -> int:
    env = {**os.environ, child_env: "1"}
    procs: dict[int, subprocess.Popen[bytes] | Forked] = {}
    stopping = False
    failures = 0

    def start(index: int) -> None:
        # A session of its own: Ctrl-C in a terminal reaches the parent only, which passes one
        # SIGTERM on (a second signal would cut a worker's graceful shutdown short). systemd and
        # Docker stop the whole group anyway if the parent is killed outright.
        if fork_worker is not None:
            procs[index] = fork(fork_worker, child_env)
        else:
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
