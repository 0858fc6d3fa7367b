"""Backups (issue 16): ``qibot db backup`` while the service holds the database, restored into a
fresh database as README "Production" says; the case reads back, every archive's digest
verifies, and an archive still cannot be deleted before its 3 years are over."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
import uuid
from pathlib import Path

from bot.config import Settings
from bot.runtime import Runtime
from bot.services import archive, cases
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from intents.classifier import Nlu
from tests.helpers.cases import new_case
from tests.helpers.cli import invoke
from tests.helpers.services import POSTGRES_ADMIN_URL, skip_or_fail


async def archived_case(runtime: Runtime) -> str:
    """A case frozen into its archive file (as closing it does), with the default retention."""
    case = await new_case(runtime, "metrology", "湖里区")
    async with transaction(runtime.sessions) as session:
        frozen = await archive.archive_case(session, await cases.require_case(session, case.number), runtime.now())
        assert frozen.retain_until.year - frozen.archived_at.year >= 3
    return case.number


def restored_reads_back(number: str, data_dir: Path, env: dict[str, str] | None = None) -> None:
    shown = invoke(["case", "show", number], data_dir, env=env)
    assert shown.returncode == 0 and number in shown.stdout, shown.stderr
    checked = invoke(["db", "check-archives"], data_dir, env=env)
    assert checked.returncode == 0 and "1 archives, every digest verifies" in checked.stdout, checked.stdout
    refused = invoke(["case", "delete-archive", number], data_dir, env=env)
    assert refused.returncode != 0 and "保存至" in refused.stdout + refused.stderr  # ≥ 3 years, restored too


async def test_sqlite_online_backup_restores_into_a_fresh_data_directory(
    settings: Settings, nlu: Nlu, knowledge: KnowledgeService, tmp_path: Path
) -> None:
    runtime = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    try:
        number = await archived_case(runtime)
        out = tmp_path / "backup" / "qibot.db"
        # While the service's engine is open on the database (WAL mode): the online backup API.
        done = await asyncio.to_thread(invoke, ["db", "backup", "--out", str(out)], settings.data_dir)
        assert done.returncode == 0 and "backup written" in done.stdout, done.stderr
    finally:
        await runtime.close()
    again = invoke(["db", "backup", "--out", str(out)], settings.data_dir)
    assert again.returncode == 1 and "not overwritten" in again.stderr

    fresh = tmp_path / "restored"
    fresh.mkdir()
    shutil.copy(out, fresh / "qibot.db")  # the restore: the file in place, then start
    restored_reads_back(number, fresh)


async def test_postgresql_dump_restores_into_a_fresh_database(
    settings: Settings, nlu: Nlu, knowledge: KnowledgeService, postgres_url: str, tmp_path: Path
) -> None:
    if shutil.which("pg_restore") is None or shutil.which("pg_dump") is None:
        skip_or_fail("pg_dump/pg_restore not installed (postgresql-client)")
    runtime = await Runtime.start(dataclasses.replace(settings, database_url=postgres_url), nlu=nlu,
                                  knowledge=knowledge)
    try:
        number = await archived_case(runtime)
    finally:
        await runtime.close()
    out = tmp_path / "qibot.dump"
    done = invoke(["db", "backup", "--out", str(out)], settings.data_dir, env={"QIBOT_DATABASE_URL": postgres_url})
    assert done.returncode == 0 and "backup written" in done.stdout, done.stderr

    restore_into_a_fresh_database(out, number, tmp_path / "other")


def restore_into_a_fresh_database(dump: Path, number: str, data_dir: Path) -> None:
    """README's PostgreSQL restore: a new database, pg_restore into it, point qibot at it."""
    admin = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"qibot_restore_{uuid.uuid4().hex[:10]}"
    fresh_url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    subprocess.run(["psql", admin, "-q", "-c", f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
    try:
        restored = subprocess.run(["pg_restore", "--no-owner", "-d", fresh_url.replace("+asyncpg", ""), str(dump)],
                                  capture_output=True, text=True, check=False)
        assert restored.returncode == 0, restored.stderr
        restored_reads_back(number, data_dir, env={"QIBOT_DATABASE_URL": fresh_url})
    finally:
        subprocess.run(["psql", admin, "-q", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                       check=False, capture_output=True)


def test_postgresql_backup_without_pg_dump_prints_what_to_run(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://qibot:secret@db.example:5432/qibot"
    done = invoke(["db", "backup"], tmp_path / "data", env={"QIBOT_DATABASE_URL": url, "PATH": str(tmp_path)})
    assert done.returncode == 2
    assert "pg_dump --format=custom" in done.stderr and "secret" not in done.stderr


async def test_check_archives_finds_a_tampered_archive(
    settings: Settings, nlu: Nlu, knowledge: KnowledgeService
) -> None:
    runtime = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    try:
        number = await archived_case(runtime)
        async with transaction(runtime.sessions) as session:
            frozen = await archive.get_archive(session, number)
            assert frozen is not None and archive.intact(frozen)
            frozen.content = {**frozen.content, "status": "edited"}
    finally:
        await runtime.close()
    checked = invoke(["db", "check-archives"], settings.data_dir)
    assert checked.returncode == 1 and number in checked.stdout
