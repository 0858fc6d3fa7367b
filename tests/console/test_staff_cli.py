"""``qibot staff``: the first administrator is created from the terminal, the password never on
the command line or in the output."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.helpers.cli import invoke, run

SECRET = "first-admin-password"


def test_staff_accounts_are_created_listed_changed_and_disabled(tmp_path: Path) -> None:
    data = tmp_path / "data"
    short = invoke(["staff", "add", "root", "--role", "admin", "--password-stdin"], data, stdin="short\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    added = run(["staff", "add", "root", "--name", "管理员", "--role", "admin", "--password-stdin"], data,
                stdin=SECRET + "\n")
    assert added.returncode == 0, added.stderr
    assert "created root (admin)" in added.stdout
    # A real process hashes as the service does: argon2id at RFC 9106's second recommended
    # profile (the commands below run in the test process, which hashes cheaply).
    first = _stored_hash(data)
    assert first.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and SECRET not in first
    unlinked = invoke(["staff", "add", "wang", "--role", "commissioner", "--password-stdin"], data, stdin=SECRET + "\n")
    assert unlinked.returncode == 1 and "--commissioner" in unlinked.stderr
    assert invoke(["staff", "passwd", "root", "--password-stdin"], data, stdin="another-password-1\n").returncode == 0
    changed = _stored_hash(data)
    assert changed.startswith("$argon2id$") and changed != first and "another-password-1" not in changed
    assert invoke(["staff", "disable", "root"], data).returncode == 0
    listing = invoke(["staff", "list"], data)
    assert "root" in listing.stdout and "admin" in listing.stdout and "disabled" in listing.stdout
    for result in (added, listing):
        assert SECRET not in result.stdout + result.stderr


def _stored_hash(data: Path) -> str:
    with sqlite3.connect(data / "qibot.db") as db:
        (stored,) = db.execute("select password_hash from staff_account where login = 'root'").fetchone()
    db.close()
    return str(stored)
