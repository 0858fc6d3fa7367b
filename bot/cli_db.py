"""``qibot db backup`` and ``qibot db check-archives``: the operator's backup story.

SQLite is copied with its online backup API (``sqlite3.Connection.backup``): a consistent copy
while the service runs and writes, page by page, never a torn file as ``cp`` of a live WAL
database can be. PostgreSQL is dumped by ``pg_dump`` (custom format, restored with
``pg_restore``); without ``pg_dump`` on the machine the command prints what to run. README,
"Production", has the restore steps; ``check-archives`` then proves the case archives came back
whole (each digest verifies) and keep their retention date.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.config import Settings


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    url = make_url(settings.effective_database_url)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    backups = settings.data_dir / "backups"
    if url.get_backend_name() == "sqlite":
        source = Path(url.database or "")
        if not source.exists():
            print(f"qibot: no database at {source}; nothing to back up", file=sys.stderr)
            return 1
        out = Path(args.out) if args.out else backups / f"qibot-{stamp}.db"
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            print(f"qibot: {out} exists; not overwritten", file=sys.stderr)
            return 1
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(out)
        try:
            with dst:
                src.backup(dst)
        finally:
            dst.close()
            src.close()
        print(f"backup written: {out} ({out.stat().st_size} bytes); restore: stop the service, copy it to "
              f"{source}, start the service")
        return 0
    out = Path(args.out) if args.out else backups / f"qibot-{stamp}.dump"
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    command = ["pg_dump", "--format=custom", "--no-owner", f"--file={out}", plain]
    shown = " ".join([*command[:-1], url.set(drivername="postgresql").render_as_string(hide_password=True)])
    if shutil.which("pg_dump") is None:
        print("qibot: pg_dump is not installed here; on a machine that has it (the PostgreSQL server, or the "
              f"postgres container), run:\n  {shown}\nand restore with pg_restore (README, 'Production')",
              file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"qibot: pg_dump failed: {done.stderr.strip()}", file=sys.stderr)
        return 1
    print(f"backup written: {out} ({out.stat().st_size} bytes); restore: createdb NEW && "
          f"pg_restore --no-owner -d NEW {out}")
    return 0


def cmd_check_archives(args: argparse.Namespace, settings: Settings) -> int:
    """Every case archive: its digest verifies, and its retention date (≥ 3 years) is kept."""
    from sqlalchemy import select

    from bot.services.archive import intact
    from bot.storage import db
    from bot.storage.models import CaseArchive

    async def check() -> tuple[int, list[str]]:
        engine = db.create_engine(settings.effective_database_url)
        try:
            async with db.transaction(db.session_factory(engine)) as session:
                archives = (await session.execute(select(CaseArchive).order_by(CaseArchive.id))).scalars().all()
                broken = [a.number for a in archives if not intact(a)]
                return len(archives), broken
        finally:
            await engine.dispose()

    count, broken = asyncio.run(check())
    if broken:
        print(f"{len(broken)} of {count} archives do NOT match their digest: {', '.join(broken)}")
        return 1
    print(f"{count} archives, every digest verifies")
    return 0
