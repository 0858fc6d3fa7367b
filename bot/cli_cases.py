"""``qibot case``, ``qibot complaint``, ``qibot commissioner``, ``qibot demo`` and ``qibot jobs``:
the commissioners' and managers' operations until the web console lands. Each command is one
transaction; notifications it writes go out through the running server's outbox dispatcher."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cli_staff_parsers
from bot.config import Settings
from bot.privacy import redact
from bot.services import archive, cases, complaints, demo, linking, matching, staff_actions
from bot.services.calendar import WorkingCalendar
from bot.services.case_states import event_name
from bot.services.cases import CaseError, NoActor
from bot.services.staff_actions import Request
from bot.storage import db
from bot.storage.models import Commissioner, ServiceCase
from bot.storage.types import utcnow


async def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[int]]) -> int:
    await db.upgrade(settings.effective_database_url)
    engine = db.create_engine(settings.effective_database_url)
    try:
        async with db.transaction(db.session_factory(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


# The staff actions (bot/services/staff_actions.py) as ``qibot case`` subcommands.
CASE_ACTIONS = {"accept": "accept", "reply": "reply", "note": "note", "transfer": "transfer", "resolve": "resolve",
                "reopen": "reopen", "end-live": "end_live", "show": "show", "mine": "mine"}
_COMMAND_OF = {action: command for command, action in CASE_ACTIONS.items()}


def step(action: str, number: str) -> str:
    """A staff action as the command line spells it (the hint of a refusal)."""
    return f"qibot case {_COMMAND_OF.get(action, action)} {number}"


def explain(exc: CaseError) -> str:
    if isinstance(exc, NoActor):
        return f"{exc}（用 --as 指定）"
    return staff_actions.explain(exc, step)


def _run(settings: Settings, work: Callable[[AsyncSession], Awaitable[int]]) -> int:
    try:
        return asyncio.run(_in_transaction(settings, work))
    except CaseError as exc:
        print(f"qibot: {explain(exc)}", file=sys.stderr)
        return 1


def _date(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if text else None


def _fmt(moment: datetime | None, tz: tzinfo) -> str:
    """Staff read times where the service works (the calendar's zone, Beijing time), whatever
    the server's own zone: the same moment the enterprise was told."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _zone(settings: Settings) -> tzinfo:
    return WorkingCalendar.for_settings(settings).tz


def _who(commissioner: Commissioner | None) -> str:
    return f"{commissioner.name}({commissioner.handle})" if commissioner else "-"


# --- case ---------------------------------------------------------------------------------------

def cmd_case(args: argparse.Namespace, settings: Settings) -> int:
    action = args.case_command
    # resolve and reopen take their text the same two ways (positional words or the option).
    text = cli_staff_parsers.text_of(args, "summary" if action == "resolve" else "reason") \
        if action in ("resolve", "reopen") else ""

    tz = _zone(settings)

    async def work(session: AsyncSession) -> int:
        now = utcnow()
        if action == "list":
            commissioner_id = None
            if args.commissioner:
                person = await matching.find_commissioner(session, args.commissioner)
                if person is None:
                    raise CaseError(f"没有名为 {args.commissioner} 的服务专员")
                commissioner_id = person.id
            rows = await cases.ledger(session, cases.LedgerFilter(
                since=_date(args.since), until=_date(args.until), domain=args.domain, district=args.district,
                status=args.status, commissioner_id=commissioner_id,
            ))
            _print_rows(rows, tz)
            return 0

        if action in CASE_ACTIONS:
            return await _staff_action(session, args, CASE_ACTIONS[action], text, now, tz)
        case = await cases.require_case(session, args.number)
        if action == "export":
            found = await archive.get_archive(session, case.number)
            if found is None:
                raise CaseError(f"{case.number} 尚未归档（只有完结的案件有档案）")
            # Into the data directory unless told otherwise, not wherever the command was run.
            out = Path(args.out) if args.out else settings.data_dir / "exports" / f"{case.number}.json"
            await asyncio.to_thread(out.parent.mkdir, parents=True, exist_ok=True)
            document = json.dumps(archive.masked_export(found), ensure_ascii=False, indent=2)
            await asyncio.to_thread(out.write_text, document, encoding="utf-8")
            print(f"档案已导出到 {out}（个人信息已脱敏）")
            return 0
        await archive.delete_archive(session, case.number, now)
        print(f"{case.number} 的档案已删除")
        return 0

    return _run(settings, work)


async def _staff_action(session: AsyncSession, args: argparse.Namespace, name: str, text: str, now: datetime,
                        tz: tzinfo) -> int:
    """One staff action: the arguments parsed into its request, the result printed. The actor is
    ``--as``, else the case owner (the assignee, to accept); ``show`` needs nobody."""
    if name == "transfer":
        text = args.reason
    elif name in ("reply", "note"):
        text = " ".join(args.text)
    request = Request(number=getattr(args, "number", None), text=text, to=getattr(args, "to", None),
                      institution_id=getattr(args, "institution", None), expert_id=getattr(args, "expert", None))
    if name == "mine":
        actor: Commissioner | None = await staff_actions.find_commissioner(session, args.actor)
    elif name == "show":
        actor = await staff_actions.find_commissioner(session, args.actor) if args.actor else None
    else:
        actor = await cases.commissioner_for_action(session, await cases.require_case(session, args.number),
                                                    args.actor)
    result = await staff_actions.run(session, actor, name, request, now)
    if result.action == "mine":
        _print_rows(result.cases, tz)
    elif result.action == "show" and result.case is not None:
        _print_case(result.case, full=args.full, tz=tz)
    elif result.case is not None:
        moved = f"，已转交 {_who(result.target)}" if result.action == "transfer" and result.target else ""
        print(f"{result.case.number}：{cases.STATUS_ZH[result.case.status]}{moved}（操作人 {_who(result.actor)}）")
    return 0


def _print_rows(rows: Sequence[ServiceCase], tz: tzinfo) -> None:
    print(f"{'编号':<16}{'领域':<8}{'状态':<10}{'区域':<8}{'负责/指派':<20}{'创建时间（北京时间）':<18}")
    for c in rows:
        holder = _who(c.owner) if c.owner else _who(c.assignee) + "*"
        print(f"{c.number:<16}{cases.domain_name(c.domain):<8}{cases.STATUS_ZH[c.status]:<10}"
              f"{(c.district or '-'):<8}{holder:<20}{_fmt(c.created_at, tz):<18}")
    print(f"共 {len(rows)} 件（* 为已指派未受理）")


def _print_case(case: ServiceCase, *, full: bool, tz: tzinfo) -> None:
    enterprise = case.enterprise
    mask = (lambda s: s) if full else redact
    print(f"{case.number}  {cases.domain_name(case.domain)}  {cases.STATUS_ZH[case.status]}")
    print(f"  负责人：{_who(case.owner)}  指派：{_who(case.assignee)}  方式：{cases.MODE_ZH.get(case.mode or '', '-')}")
    print(f"  企业：{enterprise.name or '未登记'}  信用代码：{mask(enterprise.credit_code or '-')}  "
          f"联系人：{enterprise.contact_name or '-'}  手机：{mask(enterprise.mobile or '-')}  "
          f"区域：{case.district or '-'}")
    print(f"  需求：{mask(case.description)}")
    for kind in ("institutions", "experts"):
        suggested = (case.suggestions or {}).get(kind) or []
        if suggested:
            label = "推荐机构" if kind == "institutions" else "推荐专家"
            print(f"  {label}：" + "；".join(f"{s['name']}(#{s['id']})" for s in suggested))
    print("  时间线（北京时间）：")
    for event in case.events:
        text = f"：{mask(event.text)}" if event.text else ""
        print(f"    {_fmt(event.created_at, tz)}  {event_name(event.kind):<8} {event.actor}{text}")


# --- complaint, commissioner, demo, jobs ---------------------------------------------------------

def cmd_complaint(args: argparse.Namespace, settings: Settings) -> int:
    tz = _zone(settings)

    async def work(session: AsyncSession) -> int:
        if args.complaint_command == "list":
            for c in await complaints.list_complaints(session, args.status):
                print(f"{c.number}  {complaints.status_name(c.status):<6} {_fmt(c.created_at, tz)}  "
                      f"{redact(c.text)[:80]}")
            return 0
        await complaints.reply_complaint(session, args.number, " ".join(args.text), f"manager:{args.actor}", utcnow())
        print(f"{args.number.upper()} 已答复")
        return 0

    return _run(settings, work)


def cmd_commissioner(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> int:
        if args.commissioner_command == "list":
            load = await matching.open_load(session)
            people = (await session.execute(select(Commissioner).order_by(Commissioner.id))).scalars()
            for p in people:
                score = f"{p.satisfaction_sum / p.satisfaction_count:.2f}" if p.satisfaction_count else "-"
                print(f"{p.handle:<10}{p.name:<14}{'在岗' if p.on_duty else '离岗':<4} "
                      f"{'主管 ' if p.is_supervisor else ''}领域:{'、'.join(map(cases.domain_name, p.domains or []))} "
                      f"在办:{load.get(p.id, 0)} 满意度:{score}")
            return 0
        person = await matching.find_commissioner(session, args.handle)
        if person is None:
            raise CaseError(f"没有名为 {args.handle} 的服务专员")
        if args.commissioner_command != "duty":
            return await _messenger(session, person, args)
        result = await staff_actions.run(session, person, "duty", Request(on=args.state == "on"), utcnow())
        print(f"{person.name}：{'在岗' if result.on_duty else '离岗'}")
        return 0

    return _run(settings, work)


async def _messenger(session: AsyncSession, person: Commissioner, args: argparse.Namespace) -> int:
    """link-code, set-wecom, unlink: a commissioner's messenger accounts (bot/services/linking.py).
    A link code is shown once; only its SHA-256 is stored."""
    if args.commissioner_command == "link-code":
        code = await linking.issue_code(session, person, utcnow())
        minutes = int(linking.CODE_TTL.total_seconds() // 60)
        print(f"{person.name} 的绑定码：{code}（{minutes} 分钟内有效，只能使用一次）")
        print(f"Telegram：向机器人发送 /link {code}；企业微信：向应用发送“绑定 {code}”")
        return 0
    if args.commissioner_command == "set-wecom":
        await linking.set_wecom(session, person, args.user_id)
        print(f"{person.name}：企业微信账号 {args.user_id}")
        return 0
    if args.messenger in ("telegram", "all"):
        person.telegram_chat_id = None
    if args.messenger in ("wecom", "all"):
        person.wecom_user_id = None
    person.link_code_hash, person.link_code_expires_at = None, None
    print(f"{person.name}：已解除 {args.messenger} 绑定")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> int:
        report = await demo.load_demo(session)
        print(f"示例数据已加载：站点 {report.sites}，服务专员 {report.commissioners}，"
              f"机构 {report.institutions}，专家 {report.experts}（已存在的不会重复添加）")
        return 0

    return _run(settings, work)


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    from bot.delivery import DeliveryRuntime
    from bot.jobs import run_jobs_once

    async def once() -> dict[str, Any]:
        # Delivery only: every configured channel's notifiers, no NLU or knowledge base to load.
        runtime = await DeliveryRuntime.start(settings)
        try:
            report = await run_jobs_once(runtime)
            stats = await runtime.dispatcher.run_once()
            return {"escalated": report.escalated, "reminded": report.reminded, "closed": report.closed,
                    "notifications_sent": stats.sent, "held": stats.held, "retried": stats.retried}
        finally:
            await runtime.close()

    print(json.dumps(asyncio.run(once()), ensure_ascii=False))
    return 0
