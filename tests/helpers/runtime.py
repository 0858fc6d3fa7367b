"""A runtime whose dialogue and outbox run on the test's clock, on a database already migrated.

Migrating a new SQLite file through all of Alembic's revisions costs ~0.1 s of CPU, and most tests
start a runtime on a fresh database. The migrations run once per test process into a template
file, which each such test copies into its own data directory; the runtime then still runs the
migrations, which find the schema at head. Tests of the migrations themselves, and the ones that
start a runtime on a database of their own (``database_url``), do not use the template.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path

from bot.config import Settings
from bot.runtime import Runtime
from bot.services.knowledge import KnowledgeService
from bot.storage import db
from intents.classifier import Nlu
from tests.helpers.clock import Clock

_template: Path | None = None
_template_lock = threading.Lock()


def _schema_template() -> Path:
    """A SQLite file migrated to head, made once per test process (pytest-xdist: per worker)."""
    global _template
    with _template_lock:
        if _template is None:
            folder = Path(tempfile.mkdtemp(prefix="qibot-test-schema-"))
            atexit.register(shutil.rmtree, folder, True)
            path = folder / "qibot.db"
            db.upgrade_sync(f"sqlite+aiosqlite:///{path}")
            with sqlite3.connect(path) as conn:  # everything in the main file, none in the WAL
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            _template = path
        return _template


async def premigrate(settings: Settings) -> None:
    """Put a copy of the migrated template where ``settings`` keep their SQLite database, unless
    the settings name another database or one is already there."""
    if settings.database_url:
        return
    target = settings.data_dir / "qibot.db"
    if target.exists():
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Alembic runs its own event loop (bot.storage.db.upgrade): a worker thread, as the app does.
    shutil.copyfile(await asyncio.to_thread(_schema_template), target)


async def start_runtime(settings: Settings, nlu: Nlu, knowledge: KnowledgeService, clock: Clock) -> Runtime:
    await premigrate(settings)
    runtime = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    runtime.dialogue.clock = clock
    runtime.dispatcher.clock = clock
    return runtime
