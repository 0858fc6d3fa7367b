"""The plain-text views of the commissioner's desk in a messenger (Telegram, WeCom): a case card,
a line per case, the commissioner's open cases. The operations themselves are the staff
actions (``bot/services/staff_actions.py``), shared with the CLI.

Messengers are not the console: what they show is masked by default (enterprise name
shortened, phone numbers, credit codes and ID numbers redacted), and the full record stays
behind the console link. A channel may pass ``personal=True`` where the deployment has the
legal basis for it (Telegram only with ``telegram_share_personal_data``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from bot.privacy import redact
from bot.services import cases
from bot.services.case_states import event_name
from bot.storage.models import Commissioner, ServiceCase
from intents.extract import find_case_numbers

TIMELINE_LINES = 12


def find_number(text: str) -> str | None:
    """The first case number in a command, in any of the spellings users type."""
    found = find_case_numbers(text)
    return found[0] if found else None


console_link = cases.console_link


def messenger_text(text: str, *, personal: bool = False) -> str:
    """A notification text for a messenger: identifiers masked unless allowed. (The texts carry
    no command syntax: each messenger adds its own hints and buttons.)"""
    text = text.strip()
    return text if personal else redact(text)


async def open_cases(session: AsyncSession, me: Commissioner, limit: int = 20) -> Sequence[ServiceCase]:
    """Cases the commissioner owns, or was assigned and has not yet accepted, newest first."""
    mine = or_(ServiceCase.owner_id == me.id, (ServiceCase.owner_id.is_(None)) & (ServiceCase.assignee_id == me.id))
    return (
        await session.execute(
            select(ServiceCase)
            .where(ServiceCase.status.in_(cases.OPEN_STATUSES), mine)
            .options(joinedload(ServiceCase.enterprise, innerjoin=True))
            .order_by(ServiceCase.updated_at.desc(), ServiceCase.id.desc())
            .limit(limit)
        )
    ).scalars().all()


def case_line(case: ServiceCase) -> str:
    return (f"{case.number} {cases.domain_name(case.domain)} {cases.STATUS_ZH[case.status]} "
            f"{case.district or ''} {cases.masked_enterprise(case.enterprise)}").rstrip()


def _who(commissioner: Commissioner | None) -> str:
    return f"{commissioner.name}（{commissioner.handle}）" if commissioner else "-"


def case_card(case: ServiceCase, *, tz: tzinfo, personal: bool = False, link: str = "") -> str:
    """Summary and recent timeline of a case (``get_case`` loads what this reads)."""
    mask = (lambda s: s) if personal else redact
    enterprise = case.enterprise
    lines = [f"{case.number}  {cases.domain_name(case.domain)}  {cases.STATUS_ZH[case.status]}"]
    if personal:
        lines.append(f"企业：{enterprise.name or '未登记'}  联系人：{enterprise.contact_name or '-'}  "
                     f"手机：{enterprise.mobile or '-'}  信用代码：{enterprise.credit_code or '-'}")
    else:
        lines.append(f"企业：{cases.masked_enterprise(enterprise)}")
    lines.append(f"区域：{case.district or '-'}  方式：{cases.MODE_ZH.get(case.mode or '', '-')}")
    lines.append(f"负责人：{_who(case.owner)}  指派：{_who(case.assignee)}")
    lines.append(f"需求：{mask(case.description)[:300]}")
    events = case.events[-TIMELINE_LINES:]
    if events:
        lines.append("时间线：")
        for event in events:
            when = event.created_at.astimezone(tz).strftime("%m-%d %H:%M")
            text = f"：{mask(event.text)[:80]}" if event.text else ""
            lines.append(f"  {when} {event_name(event.kind)} {event.actor}{text}")
    if link:
        lines.append(f"控制台：{link}")
    return "\n".join(lines)
