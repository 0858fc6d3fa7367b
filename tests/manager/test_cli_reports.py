"""``qibot report``: the monthly workbook and the ledger written into the data directory's
exports, as a manager runs them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from openpyxl import load_workbook

from bot.config import load_settings
from bot.services.policy import ServicePolicy
from tests.helpers.cli import invoke
from tests.helpers.managed import MONTH, build_month, open_sessions


async def _build(data_dir: Path) -> None:
    settings = load_settings(environ={"QIBOT_DATA_DIR": str(data_dir)})
    async for sessions in open_sessions(settings.effective_database_url):
        await build_month(sessions, ServicePolicy())


def test_report_month_and_ledger_write_into_the_exports(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    asyncio.run(_build(data_dir))
    done = invoke(["report", "month", MONTH], data_dir)
    assert done.returncode == 0, done.stderr
    book = load_workbook(data_dir / "exports" / f"report-{MONTH}.xlsx")
    assert next(r for r in book["月报"].iter_rows(values_only=True) if r[0] == "新增需求")[1] == 5
    done = invoke(["report", "ledger", MONTH, "--format", "csv", "--out", str(tmp_path / "l.csv")], data_dir)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "l.csv").read_text(encoding="utf-8-sig")
    assert len(text.splitlines()) == 6 and "13912345678" not in text
    bad = invoke(["report", "month", "2026-13"], data_dir)
    assert bad.returncode != 0 and "YYYY-MM" in bad.stderr
