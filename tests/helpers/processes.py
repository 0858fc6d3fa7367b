"""Real ``qibot`` processes for the production-shape tests: started as an operator starts them,
waited for by the line they print once ready, stopped with SIGTERM (or killed)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

QIBOT = Path(sys.executable).with_name("qibot")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(data_dir: Path, **settings: str) -> dict[str, str]:
    """The process environment: no QIBOT_* of the caller's, the given settings, no sentence
    embeddings (every fresh data directory would train their heads, ~15 s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIBOT_")}
    env.update({"QIBOT_DATA_DIR": str(data_dir), "QIBOT_EMBEDDINGS": "0"})
    env.update({f"QIBOT_{k.upper()}": v for k, v in settings.items()})
    return env


class Process:
    """One ``qibot`` command running in the background; a thread reads its output as it comes
    (a full pipe would stop the process), kept for waiting on and for the failure report."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        command = [str(QIBOT)] if QIBOT.exists() else [sys.executable, "-m", "bot.cli"]
        self.args = args
        self.proc = subprocess.Popen(command + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        self.output: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.output.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, text: str, timeout: float = 120.0, count: int = 1) -> str:
        """The ``count``-th output line containing ``text``; fails with the output so far if the
        process exits or the time runs out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.output if text in line]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    break
                self._changed.wait(timeout=min(left, 1.0))
        raise AssertionError(f"qibot {' '.join(self.args)}: no line with {text!r}; output:\n{self.text()}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then the exit code once it has stopped."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as a crash or the OOM killer."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=5)

    def text(self) -> str:
        return "".join(self.output)
