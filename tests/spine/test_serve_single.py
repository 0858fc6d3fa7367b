"""Issue 14: a second ``qibot serve`` on the same data directory refuses before binding, in one
line, and leaves the running server and its pid file alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.helpers.processes import free_port

QIBOT = Path(sys.executable).with_name("qibot")


def _command(*args: str) -> list[str]:
    return ([str(QIBOT)] if QIBOT.exists() else [sys.executable, "-m", "bot.cli"]) + list(args)


def test_a_second_serve_on_the_same_data_directory_refuses(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIBOT_")}
    env.update({"QIBOT_DATA_DIR": str(data), "QIBOT_EMBEDDINGS": "0"})
    port = free_port()
    first = subprocess.Popen(_command("serve", "--port", str(port)), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        assert first.stdout is not None
        line = first.stdout.readline()  # blocks until bound (or the process dies)
        assert "serving on" in line, line
        pid_file = data / "qibot.pid"
        assert pid_file.read_text() == str(first.pid)

        for other_port in (port, free_port()):  # the same port, and a free one: both refused
            started = time.monotonic()
            second = subprocess.run(_command("serve", "--port", str(other_port)), env=env,
                                    capture_output=True, text=True, timeout=60, check=False)
            assert second.returncode != 0
            assert "serving on" not in second.stdout
            assert "Traceback" not in second.stderr
            lines = [x for x in second.stderr.strip().splitlines() if not x.startswith("qibot: warning:")]
            assert len(lines) == 1 and "another qibot serve" in lines[0], lines
            assert str(first.pid) in lines[0]
            assert time.monotonic() - started < 10  # refused before loading the NLU or binding

        assert first.poll() is None
        assert pid_file.read_text() == str(first.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            assert answer.status == 200
    finally:
        first.terminate()
        first.wait(timeout=30)
    assert not (data / "qibot.pid").exists()
