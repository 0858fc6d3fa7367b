"""A database that is missing or unreachable when a command starts: one clear line on stderr
and a non-zero exit, never the driver's traceback (issue 16)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.helpers.cli import run
from tests.helpers.services import POSTGRES_ADMIN_URL

NOBODY_LISTENS = "postgresql+asyncpg://qibot:s3cret@127.0.0.1:1/qibot"
COMMANDS = (["db", "upgrade"], ["jobs"], ["serve", "--port", "18931"])  # serve fails before it binds


def check_one_line(result_stderr: str, shown_url: str) -> None:
    # (serve warns about settings it does not know, such as the harness's QIBOT_EMBEDDINGS)
    lines = [line for line in result_stderr.splitlines() if line.strip() and not line.startswith("qibot: warning:")]
    assert len(lines) == 1, result_stderr
    assert lines[0].startswith(f"qibot: database unreachable at {shown_url}: ")
    assert "Traceback" not in result_stderr and "s3cret" not in result_stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_unreachable_database_is_one_line(command: list[str], tmp_path: Path) -> None:
    result = run(command, tmp_path / "data", env={"QIBOT_DATABASE_URL": NOBODY_LISTENS})
    assert result.returncode == 3
    check_one_line(result.stderr, "postgresql+asyncpg://qibot:***@127.0.0.1:1/qibot")
    assert "Connect call failed" in result.stderr or "refused" in result.stderr.lower()


@pytest.mark.parametrize("command", COMMANDS[:2], ids=lambda c: " ".join(c[:2]))
def test_a_database_that_does_not_exist_is_named(command: list[str], tmp_path: Path, postgres_url: str) -> None:
    """On a running server, a database name nobody created (a typo in QIBOT_DATABASE_URL)."""
    missing = postgres_url.rsplit("/", 1)[0] + f"/qibot_missing_{uuid.uuid4().hex[:8]}"
    result = run(command, tmp_path / "data", env={"QIBOT_DATABASE_URL": missing})
    assert result.returncode == 3
    check_one_line(result.stderr, missing)
    assert "does not exist" in result.stderr
    assert POSTGRES_ADMIN_URL  # the machine's server answered (else postgres_url skipped)


def test_a_client_that_went_away_is_not_a_database_outage() -> None:
    from bot.storage.outage import is_unavailable

    assert not is_unavailable(BrokenPipeError())  # `qibot case list | head -1`
    assert not is_unavailable(ConnectionResetError("Cannot write to closing transport"))  # a closed page
    assert is_unavailable(ConnectionRefusedError(111, "Connect call failed"))
