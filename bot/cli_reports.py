"""``qibot report month|ledger``: the manager's exports from the command line, written into the
data directory's ``exports`` like ``qibot case export`` (the console serves the same bytes)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli_cases import _run
from bot.config import Settings
from bot.services import reports, stats
from bot.services.calendar import WorkingCalendar
from bot.services.cases import CaseError
from bot.services.policy import ServicePolicy
from bot.storage.types import utcnow


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    policy = ServicePolicy.from_settings(settings)
    tz = WorkingCalendar.for_settings(settings).tz
    where = {k: v for k, v in (("domain", args.domain), ("district", args.district), ("site_id", args.site)) if v}
    try:
        period = stats.month_filter(args.month, tz, **where)
    except stats.StatsError as exc:
        raise SystemExit(f"qibot: {exc}") from None

    async def work(session: AsyncSession) -> int:
        await stats.stamp_deadlines(session, policy)
        if args.report_command == "month":
            body = await reports.monthly_workbook(session, args.month, utcnow(), tz, **where)
            name = f"report-{args.month}.xlsx"
        else:
            rows = await reports.ledger_rows(session, period, tz)
            body = reports.ledger_csv(rows) if args.format == "csv" else reports.ledger_xlsx(rows)
            name = f"ledger-{args.month}.{args.format}"
        out: Path = args.out or settings.data_dir / "exports" / name
        try:
            await asyncio.to_thread(out.parent.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread(out.write_bytes, body)
        except OSError as exc:
            raise CaseError(f"无法写入 {out}：{exc.strerror}") from None
        print(f"已导出到 {out}（个人信息已脱敏）")
        return 0

    return _run(settings, work)
