"""``qibot enterprise export|erase|requests`` (a person's requests about their data, audited) and
``qibot limits`` (what the abuse limits refused, summed over every worker)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli_cases import _fmt, _run, _zone
from bot.config import Settings
from bot.services import limits, personal_data
from bot.services.cases import CaseError
from bot.storage.types import utcnow


def _subject(args: argparse.Namespace) -> personal_data.Subject:
    return personal_data.Subject(mobile=args.mobile, credit_code=args.credit_code,
                                 enterprise_id=args.enterprise_id, case_number=args.case_number)


def cmd_enterprise(args: argparse.Namespace, settings: Settings) -> int:
    action = args.enterprise_command

    async def work(session: AsyncSession) -> int:
        now = utcnow()
        if action == "requests":
            for row in await personal_data.requests(session, args.limit):
                when = _fmt(row.created_at, _zone(settings))
                print(f"{when}  {row.kind:<7} {row.actor:<16} {row.subject}  {row.reason}  "
                      f"{json.dumps(row.summary, ensure_ascii=False)}")
            return 0
        subject = _subject(args)
        found = await personal_data.find(session, subject)
        if not found:
            raise CaseError(f"没有找到 {subject.describe()} 对应的企业信息")
        actor = args.actor or getpass.getuser()
        ids = [e.id for e in found]
        if action == "export":
            data = await personal_data.export(session, found, now)
            text = json.dumps(data, ensure_ascii=False, indent=2)
            if args.out:
                args.out.write_text(text + "\n", encoding="utf-8")
                args.out.chmod(0o600)  # personal data in clear: readable by its writer only
                print(f"exported {len(ids)} enterprise profile(s) to {args.out}", file=sys.stderr)
            else:
                print(text)
            counts = {"enterprises": ids, "cases": sum(len(e["cases"]) for e in data["enterprises"]),
                      "messages": sum(len(e["messages"]) for e in data["enterprises"])}
            await personal_data.audit(session, kind="export", subject=subject, enterprises=found, actor=actor,
                                      reason=args.reason, summary=counts, now=now)
            return 0
        report = await personal_data.erase(session, found, now, dry_run=not args.yes)
        summary = report.as_dict()
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        if not args.yes:
            print("nothing erased yet: add --yes to erase the above", file=sys.stderr)
            return 1
        await personal_data.audit(session, kind="erase", subject=subject, enterprises=found, actor=actor,
                                  reason=args.reason, summary=summary, now=now)
        print(f"erased; the request is recorded in the audit (qibot enterprise requests), answered by {actor}",
              file=sys.stderr)
        return 0

    return _run(settings, work)


def cmd_limits(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> int:
        since = (utcnow() - timedelta(days=max(args.days, 1) - 1)).strftime("%Y-%m-%d")
        rows = await limits.refusal_counts(session, since)
        where = f"Redis ({settings.redis_url})" if settings.redis_url else "memory (each worker counts alone)"
        print(f"rates counted in {where}; quotas counted in the database")
        print(f"{'day':<12}{'limit':<22}{'channel':<10}{'refused':>8}  last")
        for row in rows:
            print(f"{row.day:<12}{row.limit:<22}{row.channel:<10}{row.count:>8}  {_fmt(row.last_at, _zone(settings))}")
        if not rows:
            print(f"(no refusals since {since})")
        return 0

    return _run(settings, work)
