"""Running ``qibot`` from the tests, two ways.

* :func:`run`: as a user does — a real process, real stdin and stdout, its exit code. For what only
  a process shows: the script starts at all, a start-up error is one line and no traceback, a
  closed pipe, signals, several processes on one database.
* :func:`invoke`: the same ``bot.cli.main`` with the same arguments, environment, stdin and
  captured output, inside the test process. A new interpreter costs ~1 s of CPU (imports, the NLU
  and knowledge base loaded again); most CLI tests check what a command does, not that a process
  starts, and ~60 of them made a fifth of the suite's CPU time.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

QIBOT = Path(sys.executable).with_name("qibot")


def _environment(data_dir: Path, env: dict[str, str] | None, base: dict[str, str]) -> dict[str, str]:
    environ = {k: v for k, v in base.items() if not k.startswith("QIBOT_")}
    # The CLI's plumbing is under test here; sentence embeddings would make every fresh data
    # directory train their heads (~15 s). test_ask_with_embeddings covers the default.
    environ.update({"QIBOT_DATA_DIR": str(data_dir), "QIBOT_EMBEDDINGS": "0", **(env or {})})
    return environ


def run(args: list[str], data_dir: Path, stdin: str = "", env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``qibot ARGS`` in a new process."""
    command = [str(QIBOT)] if QIBOT.exists() else [sys.executable, "-m", "bot.cli"]
    return subprocess.run(command + args, input=stdin, capture_output=True, text=True,
                          env=_environment(data_dir, env, dict(os.environ)), timeout=timeout, check=False)


def invoke(args: list[str], data_dir: Path, stdin: str = "",
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``qibot ARGS`` in this process: the result a process would give (exit status, stdout,
    stderr, an uncaught error's traceback with status 1). Inside a running event loop (an async
    test) the command runs in a thread, since it starts its own loop as the real one does."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _invoke(args, data_dir, stdin, env)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_invoke, args, data_dir, stdin, env).result()


def _invoke(args: list[str], data_dir: Path, stdin: str,
            env: dict[str, str] | None) -> subprocess.CompletedProcess[str]:
    from bot import cli

    out, err = io.StringIO(), io.StringIO()
    with _process_state(_environment(data_dir, env, dict(os.environ)), stdin), redirect_stdout(out), \
            redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse's usage errors, --version, sys.exit in a command
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except Exception:
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(["qibot", *args], code, out.getvalue(), err.getvalue())


@contextmanager
def _process_state(environ: dict[str, str], stdin: str) -> Iterator[None]:
    """What a command may change that belongs to the process: the environment, stdin, and the
    logging set-up and excepthook ``main`` installs (``configure_logging``); all put back after."""
    saved_environ = dict(os.environ)
    saved_stdin, saved_hook = sys.stdin, sys.excepthook
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    os.environ.clear()
    os.environ.update(environ)
    sys.stdin = io.StringIO(stdin)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
        sys.stdin, sys.excepthook = saved_stdin, saved_hook
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
