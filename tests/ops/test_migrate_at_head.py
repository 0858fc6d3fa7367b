"""A worker starting on a schema already at head (the deployment's one-shot ``migrate`` ran, or
a restart) skips Alembic entirely: one query, no ~12 MB of Alembic, Mako and Pygments held by
every serving process. A schema behind head is still migrated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bot.storage import db


def test_head_read_from_the_scripts_matches_alembic() -> None:
    scripts = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert db.head_revisions() == frozenset(scripts.get_heads())


async def test_at_head_only_when_the_schema_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    assert not await db.at_head(url)  # empty file: no version table
    await db.upgrade(url, "0008")
    assert not await db.at_head(url)  # behind head
    await db.upgrade(url)
    assert await db.at_head(url)

    calls: list[str] = []
    monkeypatch.setattr(db, "upgrade_sync", lambda u, r="head": calls.append(r))
    await db.upgrade(url)
    assert calls == []  # at head: Alembic not run
    await db.upgrade(url, "0008")
    assert calls == ["0008"]  # an explicit revision always goes through Alembic


def test_a_start_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    db.upgrade_sync(url)
    code = ("import asyncio, sys; from bot.storage import db; asyncio.run(db.upgrade(sys.argv[1])); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako', 'pygments')))")
    out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
