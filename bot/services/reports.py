"""What the manager takes away (工作台账, 6.9; 统计分析, 6.11): the monthly report as an Excel
workbook with month-on-month (环比) and year-on-year (同比) columns, the ledger one row per case
as CSV or XLSX, and a case's archive file with its digest. Every identifier is masked
(``bot/privacy.py``): exports leave the data store.

Builds bytes only; the console serves them and the CLI writes them to the data directory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.privacy import redact
from bot.services import archive, followups, stats
from bot.services.case_states import MODE_ZH, STATUS_ZH
from bot.services.cases import CaseError, domain_name, masked_enterprise
from bot.storage.models import Commissioner, Enterprise, Rating, RatingFollowup, ServiceCase

Number = int | float | None


@dataclass(frozen=True, slots=True)
class Line:
    """One figure of the monthly report: this month, last month, the same month last year."""

    label: str
    now: Number
    prev: Number
    last_year: Number
    percent: bool = False


def _change(now: Number, then: Number, percent: bool) -> Number:
    """环比/同比: a difference in points for a rate, a relative change for a count."""
    if now is None or then is None:
        return None
    if percent:
        return now - then
    return (now - then) / then if then else None


def report_lines(now: stats.Dashboard, prev: stats.Dashboard, last_year: stats.Dashboard) -> list[Line]:
    levels = followups.scale().levels

    def line(label: str, pick: Any, percent: bool = False) -> Line:
        return Line(label, pick(now), pick(prev), pick(last_year), percent)

    lines = [
        line("新增需求", lambda d: d.counts["opened"]),
        line("签收", lambda d: d.counts["accepted"]),
        line("办结", lambda d: d.counts["resolved"]),
        line("及时签收率", lambda d: d.acceptance_rate, True),
        line("按时办结率", lambda d: d.completion_rate, True),
        line("评价数", lambda d: d.rated),
    ]
    lines += [line(levels[score], lambda d, s=score: d.levels[s]) for score in (5, 4, 3, 2, 1)]
    lines += [
        line("满意率（前三级：非常满意+满意+基本满意）", lambda d: d.satisfaction_top3, True),
        line("满意率（前两级：非常满意+满意）", lambda d: d.satisfaction_top2, True),
        line("平均分", lambda d: d.average_score),
        line("差评", lambda d: d.bad),
        line("差评应回访（已答复或已到期）", lambda d: d.followups["due"]),
        line("差评按时回访", lambda d: d.followups["in_time"]),
        line("差评按时回访率", lambda d: d.followup_in_time_rate, True),
    ]
    return lines


async def _by(session: AsyncSession, where: stats.StatsFilter, column: Any) -> list[tuple[str, int, int]]:
    """Opened and resolved in the period, grouped by ``column`` (domain, district)."""
    scope = stats._case_scope(where)
    opened, resolved = stats._in(ServiceCase.created_at, where), stats._in(ServiceCase.resolved_at, where)
    rows = (await session.execute(
        select(column, stats._sum(opened), stats._sum(resolved))
        .where((opened | resolved), *scope).group_by(column).order_by(column)
    )).all()
    return [(str(key or "未填"), int(o), int(r)) for key, o, r in rows]


HEADER = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def _header(sheet: Any, titles: Sequence[str], widths: Sequence[int]) -> None:
    sheet.append(list(titles))
    for index, width in enumerate(widths):
        cell = sheet.cell(row=sheet.max_row, column=index + 1)
        cell.font, cell.fill = HEADER, HEADER_FILL
        sheet.column_dimensions[cell.column_letter].width = width


async def monthly_workbook(session: AsyncSession, month: str, now: datetime, tz: ZoneInfo,
                           **where: Any) -> bytes:
    """The month's report: figures with 环比 and 同比, by domain and district, per commissioner,
    and the bad-rating follow-ups of the month."""
    this = stats.month_filter(month, tz, **where)
    boards = [await stats.dashboard(session, f, now, tz, list_limit=0)
              for f in (this, this.shifted(-1, tz), this.shifted(-12, tz))]
    book = Workbook()
    sheet = book.active
    sheet.title = "月报"
    sheet.append([f"质量基础设施协同服务 月度统计 {month}（北京时间）"])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([f"生成时间 {now.astimezone(tz):%Y-%m-%d %H:%M}"])
    _header(sheet, ("指标", "本月", "上月", "环比", "去年同月", "同比"), (40, 12, 12, 12, 12, 12))
    for item in report_lines(*boards):
        values = [item.now, item.prev, _change(item.now, item.prev, item.percent), item.last_year,
                  _change(item.now, item.last_year, item.percent)]
        sheet.append([item.label, *values])
        row = sheet.max_row
        for col, value in zip("BCDEF", values, strict=True):
            cell = sheet[f"{col}{row}"]
            if value is None:
                cell.value = "—"
                cell.alignment = Alignment(horizontal="right")
            elif item.percent and col in "BCE":
                cell.number_format = "0.0%"
            elif col in "DF":
                cell.number_format = '+0.0" 个百分点";-0.0" 个百分点"' if item.percent else "+0.0%;-0.0%"
                if item.percent:
                    cell.value = value * 100
            elif isinstance(value, float):
                cell.number_format = "0.00"
    sheet.freeze_panes = "B4"

    parts = book.create_sheet("分领域分区")
    _header(parts, ("类别", "名称", "新增", "办结"), (10, 36, 10, 10))
    for code, opened, resolved in await _by(session, this, ServiceCase.domain):
        parts.append(["领域", domain_name(code), opened, resolved])
    for district, opened, resolved in await _by(session, this, ServiceCase.district):
        parts.append(["区", district, opened, resolved])

    people = book.create_sheet("专员工作量")
    _header(people, ("服务专员", "本月新增", "本月办结", "在办", "首次响应中位数（分钟）"), (16, 12, 12, 10, 22))
    for w in boards[0].workload:
        median = round(w.median_first_response_s / 60, 1) if w.median_first_response_s is not None else "—"
        people.append([w.name, w.opened, w.resolved, w.open_now, median])

    loops = book.create_sheet("差评回访")
    _header(loops, ("案件编号", "评价", "状态", "处理方式", "回访期限", "答复时间", "按时", "企业对回访评价"),
            (18, 12, 10, 22, 18, 18, 8, 16))
    scale = followups.scale()
    rows = (await session.execute(
        select(RatingFollowup, ServiceCase.number).join(ServiceCase, ServiceCase.id == RatingFollowup.case_id)
        .where(stats._in(RatingFollowup.created_at, this), *stats._case_scope(this))
        .order_by(RatingFollowup.created_at)
    )).all()
    for followup, number in rows:
        loops.append([
            number, scale.level(followup.score), scale.status.get(followup.status, followup.status),
            scale.outcomes.get(followup.outcome or "", ""), _local(followup.due_at, tz),
            _local(followup.replied_at, tz), "是" if followups.in_time(followup) else "否",
            scale.level(followup.enterprise_score),
        ])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return f"{value.astimezone(tz):%Y-%m-%d %H:%M}" if value else ""


# --- the ledger ---------------------------------------------------------------------------------

LEDGER_COLUMNS = ("案件编号", "服务领域", "服务方式", "区", "企业", "统一社会信用代码", "联系人", "联系电话",
                  "需求描述", "状态", "服务专员", "提交时间", "签收时间", "办结时间", "签收期限", "办结期限",
                  "及时签收", "按时办结", "评价", "评价等级")


def _contact(name: str | None) -> str:
    return (name.strip()[0] + "**") if name and name.strip() else ""


def _on_time(done: datetime | None, due: datetime | None) -> str:
    if done is None or due is None:
        return ""
    return "是" if done <= due else "否"


async def ledger_rows(session: AsyncSession, where: stats.StatsFilter, tz: ZoneInfo,
                      limit: int = 200_000) -> list[list[str]]:
    """The ledger (工作台账): one masked row per case opened in the period, with its latest rating."""
    latest = (select(Rating.case_id, func.max(Rating.round).label("round"))
              .group_by(Rating.case_id).subquery())
    handler = func.coalesce(ServiceCase.owner_id, ServiceCase.assignee_id)
    rows = (await session.execute(
        select(ServiceCase, Enterprise, Commissioner.name, Rating.score)
        .join(Enterprise, Enterprise.id == ServiceCase.enterprise_id)
        .outerjoin(Commissioner, Commissioner.id == handler)
        .outerjoin(latest, latest.c.case_id == ServiceCase.id)
        .outerjoin(Rating, (Rating.case_id == latest.c.case_id) & (Rating.round == latest.c.round))
        .where(stats._in(ServiceCase.created_at, where), *stats._case_scope(where))
        .order_by(ServiceCase.created_at, ServiceCase.id).limit(limit)
    )).all()
    scale = followups.scale()
    return [
        [case.number, domain_name(case.domain), MODE_ZH.get(case.mode or "", ""), case.district or "",
         masked_enterprise(enterprise), redact(enterprise.credit_code or ""), _contact(enterprise.contact_name),
         redact(enterprise.mobile or ""), redact(case.description)[:500], STATUS_ZH.get(case.status, case.status),
         owner or "", _local(case.created_at, tz), _local(case.accepted_at, tz), _local(case.resolved_at, tz),
         _local(case.accept_due_at, tz), _local(case.resolve_due_at, tz),
         _on_time(case.accepted_at, case.accept_due_at), _on_time(case.resolved_at, case.resolve_due_at),
         str(score) if score else "", scale.level(score)]
        for case, enterprise, owner, score in rows
    ]


def ledger_csv(rows: Iterable[Sequence[str]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens the Chinese text correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(LEDGER_COLUMNS)
    for row in rows:
        # A cell starting with = + - @ would be a formula in a spreadsheet (CSV injection).
        writer.writerow([("'" + v) if v[:1] in ("=", "+", "-", "@") else v for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def ledger_xlsx(rows: Iterable[Sequence[str]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("工作台账")
    sheet.append(list(LEDGER_COLUMNS))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def archive_file(session: AsyncSession, number: str) -> tuple[str, bytes]:
    """A closed case's archive (一项一档) as one JSON file, masked, with the SHA-256 digest of the
    original; raises ``CaseError`` when the case has none."""
    found = await archive.get_archive(session, number)
    if found is None:
        raise CaseError(f"{number.upper()} 尚未归档（只有完结的案件有档案）")
    document = json.dumps(archive.masked_export(found), ensure_ascii=False, indent=2)
    return f"{found.number}.json", document.encode("utf-8")
