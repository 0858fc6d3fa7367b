"""``qibot case``, ``qibot complaint``, ``qibot commissioner``, ``qibot demo`` and ``qibot jobs``:
the commissioners' and managers' operations until the web console lands. Each command is one
transaction; notifications it writes go out through the running server's outbox dispatcher."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.privacy import redact
from bot.services import archive, cases, complaints, demo, linking, live, matching
from bot.services.cases import CaseError
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


def _run(settings: Settings, work: Callable[[AsyncSession], Awaitable[int]]) -> int:
    try:
        return asyncio.run(_in_transaction(settings, work))
    except CaseError as exc:
        print(f"qibot: {exc}", file=sys.stderr)
        return 1


def _date(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if text else None


def _fmt(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"


def _who(commissioner: Commissioner | None) -> str:
    return f"{commissioner.name}({commissioner.handle})" if commissioner else "-"


# --- case ---------------------------------------------------------------------------------------

def cmd_case(args: argparse.Namespace, settings: Settings) -> int:
    action = args.case_command

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
            print(f"{'编号':<16}{'领域':<8}{'状态':<10}{'区域':<8}{'负责/指派':<20}{'创建时间':<18}")
            for c in rows:
                holder = _who(c.owner) if c.owner else _who(c.assignee) + "*"
                print(f"{c.number:<16}{cases.domain_name(c.domain):<8}{cases.STATUS_ZH[c.status]:<10}"
                      f"{(c.district or '-'):<8}{holder:<20}{_fmt(c.created_at):<18}")
            print(f"共 {len(rows)} 件（* 为已指派未受理）")
            return 0

        case = await cases.require_case(session, args.number)
        if action == "show":
            _print_case(case, full=args.full)
            return 0
        if action == "export":
            found = await archive.get_archive(session, case.number)
            if found is None:
                raise CaseError(f"{case.number} 尚未归档（只有完结的案件有档案）")
            out = Path(args.out or f"{case.number}.json")
            document = json.dumps(archive.masked_export(found), ensure_ascii=False, indent=2)
            await asyncio.to_thread(out.write_text, document, encoding="utf-8")
            print(f"档案已导出到 {out}（个人信息已脱敏）")
            return 0
        if action == "delete-archive":
            await archive.delete_archive(session, case.number, now)
            print(f"{case.number} 的档案已删除")
            return 0

        actor = await cases.commissioner_for_action(session, case, args.actor)
        if action == "accept":
            await cases.accept(session, case, actor, now)
        elif action == "reply":
            await cases.reply(session, case, actor, " ".join(args.text), now)
            await live.touch_for_case(session, case, now)
        elif action == "transfer":
            target = await matching.find_commissioner(session, args.to)
            if target is None:
                raise CaseError(f"没有名为 {args.to} 的服务专员")
            await cases.transfer(session, case, actor, target, args.reason, now)
        elif action == "resolve":
            await cases.resolve(session, case, actor, " ".join(args.summary), now,
                                institution_id=args.institution, expert_id=args.expert)
        elif action == "reopen":
            await cases.reopen(session, case, actor, args.reason, now)
        elif action == "end-live":
            current = await live.active_for_case(session, case)
            if current is None:
                raise CaseError(f"{case.number} 没有进行中的人工会话")
            await live.end(session, current, cases.actor_of(actor), now, from_outside=True)
        print(f"{case.number}：{cases.STATUS_ZH[case.status]}（操作人 {_who(actor)}）")
        return 0

    return _run(settings, work)


def _print_case(case: ServiceCase, *, full: bool) -> None:
    enterprise = case.enterprise
    mask = (lambda s: s) if full else redact
    print(f"{case.number}  {cases.domain_name(case.domain)}  {cases.STATUS_ZH[case.status]}")
    print(f"  负责人：{_who(case.owner)}  指派：{_who(case.assignee)}  方式：{cases.MODE_ZH.get(case.mode or '', '-')}")
    print(f"  企业：{enterprise.name or '未登记'}  信用代码：{mask(enterprise.credit_code or '-')}  "
          f"联系人：{enterprise.contact_name or '-'}  手机：{mask(enterprise.mobile or '-')}  "
          f"区域：{case.district or '-'}")
    print(f"  需求：{case.description}")
    for kind in ("institutions", "experts"):
        suggested = (case.suggestions or {}).get(kind) or []
        if suggested:
            label = "推荐机构" if kind == "institutions" else "推荐专家"
            print(f"  {label}：" + "；".join(f"{s['name']}(#{s['id']})" for s in suggested))
    print("  时间线：")
    for event in case.events:
        text = f"：{mask(event.text)}" if event.text else ""
        print(f"    {_fmt(event.created_at)}  {event.kind:<20} {event.actor}{text}")


# --- complaint, commissioner, demo, jobs ---------------------------------------------------------

def cmd_complaint(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> int:
        if args.complaint_command == "list":
            for c in await complaints.list_complaints(session, args.status):
                print(f"{c.number}  {c.status:<8} {_fmt(c.created_at)}  {redact(c.text)[:80]}")
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
                      f"{'主管 ' if p.is_supervisor else ''}领域:{','.join(p.domains or [])} "
                      f"在办:{load.get(p.id, 0)} 满意度:{score}")
            return 0
        person = await matching.find_commissioner(session, args.handle)
        if person is None:
            raise CaseError(f"没有名为 {args.handle} 的服务专员")
        if args.commissioner_command != "duty":
            return await _messenger(session, person, args)
        person.on_duty = args.state == "on"
        print(f"{person.name}：{'在岗' if person.on_duty else '离岗'}")
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
    from bot.jobs import run_jobs_once
    from bot.runtime import Runtime

    async def once() -> dict[str, Any]:
        runtime = await Runtime.start(settings)
        try:
            report = await run_jobs_once(runtime)
            stats = await runtime.dispatcher.run_once()
            return {"escalated": report.escalated, "reminded": report.reminded, "closed": report.closed,
                    "notifications_sent": stats.sent, "held": stats.held, "retried": stats.retried}
        finally:
            await runtime.close()

    print(json.dumps(asyncio.run(once()), ensure_ascii=False))
    return 0


def add_parsers(sub: Any) -> None:
    case = sub.add_parser("case", help="cases: list (ledger), show, accept, reply, transfer, resolve, reopen, ...")
    case_sub = case.add_subparsers(dest="case_command", required=True)
    listing = case_sub.add_parser("list", help="the work ledger, filterable")
    listing.add_argument("--status", choices=list(cases.STATUS_ZH))
    listing.add_argument("--domain")
    listing.add_argument("--district")
    listing.add_argument("--commissioner", help="handle of the owner (or assignee)")
    listing.add_argument("--since", help="YYYY-MM-DD")
    listing.add_argument("--until", help="YYYY-MM-DD (exclusive)")
    for name, helptext in (("show", "one case with its timeline"), ("accept", "take the case (首问负责制)"),
                           ("end-live", "end the live handoff"), ("export", "write the archive file (masked)"),
                           ("delete-archive", "delete an archive past its retention period")):
        p = case_sub.add_parser(name, help=helptext)
        p.add_argument("number")
        p.add_argument("--as", dest="actor", help="act as this commissioner (default: the case owner)")
        if name == "show":
            p.add_argument("--full", action="store_true", help="show contact details unmasked")
        if name == "export":
            p.add_argument("--out")
    reply = case_sub.add_parser("reply", help="message the enterprise in its own channel")
    reply.add_argument("number")
    reply.add_argument("text", nargs="+")
    reply.add_argument("--as", dest="actor")
    transfer = case_sub.add_parser("transfer", help="hand the case to another commissioner, with a reason")
    transfer.add_argument("number")
    transfer.add_argument("--to", required=True)
    transfer.add_argument("--reason", required=True)
    transfer.add_argument("--as", dest="actor")
    resolve = case_sub.add_parser("resolve", help="mark done; the enterprise is asked for a rating")
    resolve.add_argument("number")
    resolve.add_argument("summary", nargs="+")
    resolve.add_argument("--as", dest="actor")
    resolve.add_argument("--institution", type=int, help="id of the institution that served")
    resolve.add_argument("--expert", type=int, help="id of the expert that served")
    reopen = case_sub.add_parser("reopen", help="reopen a resolved or closed case")
    reopen.add_argument("number")
    reopen.add_argument("--reason", required=True)
    reopen.add_argument("--as", dest="actor")
    case.set_defaults(handler=cmd_case)

    complaint = sub.add_parser("complaint", help="complaints: list, reply")
    complaint_sub = complaint.add_subparsers(dest="complaint_command", required=True)
    clist = complaint_sub.add_parser("list")
    clist.add_argument("--status", choices=["open", "replied", "closed"])
    creply = complaint_sub.add_parser("reply")
    creply.add_argument("number")
    creply.add_argument("text", nargs="+")
    creply.add_argument("--as", dest="actor", default="management")
    complaint.set_defaults(handler=cmd_complaint)

    people = sub.add_parser("commissioner", help="commissioners: list, duty on|off, link-code, set-wecom, unlink")
    people_sub = people.add_subparsers(dest="commissioner_command", required=True)
    people_sub.add_parser("list")
    duty = people_sub.add_parser("duty")
    duty.add_argument("handle")
    duty.add_argument("state", choices=["on", "off"])
    link_code = people_sub.add_parser("link-code", help="one-time code to link Telegram or WeCom (15 minutes)")
    link_code.add_argument("handle")
    set_wecom = people_sub.add_parser("set-wecom", help="set the commissioner's WeCom UserID")
    set_wecom.add_argument("handle")
    set_wecom.add_argument("user_id")
    unlink = people_sub.add_parser("unlink", help="stop messenger notifications to the commissioner")
    unlink.add_argument("handle")
    unlink.add_argument("messenger", choices=["telegram", "wecom", "all"])
    people.set_defaults(handler=cmd_commissioner)

    demo_parser = sub.add_parser("demo", help="demo data")
    demo_sub = demo_parser.add_subparsers(dest="demo_command", required=True)
    demo_sub.add_parser("load", help="load sample sites, commissioners, institutions and experts")
    demo_parser.set_defaults(handler=cmd_demo)

    jobs = sub.add_parser("jobs", help="run the periodic jobs and the outbox dispatcher once (cron-friendly)")
    jobs.set_defaults(handler=cmd_jobs)
