"""Running ``qibot`` as a user does: a real process, real stdin and stdout, its exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

QIBOT = Path(sys.executable).with_name("qibot")


def run(args: list[str], data_dir: Path, stdin: str = "", env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("QIBOT_")}
    # The CLI's plumbing is under test here; sentence embeddings would make every fresh data
    # directory train their heads (~15 s). test_ask_with_embeddings covers the default.
    environ.update({"QIBOT_DATA_DIR": str(data_dir), "QIBOT_EMBEDDINGS": "0", **(env or {})})
    command = [str(QIBOT)] if QIBOT.exists() else [sys.executable, "-m", "bot.cli"]
    return subprocess.run(command + args, input=stdin, capture_output=True, text=True, env=environ,
                          timeout=timeout, check=False)
