"""What the case page shows, read in one transaction: the profile (masked unless a field was
revealed), the timeline, the materials, the whole conversation with the enterprise and the
delivery state of every message sent to it (from the outbox row written with it)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.privacy import redact
from bot.services import live, materials, message_log
from bot.storage.models import CaseEvent, CaseMaterial, ChannelIdentity, Commissioner, MessageLog, Outbox, ServiceCase

CONVERSATION_LIMIT = 500
CHANNEL_ZH = {"webchat": "网页对话", "wechat": "微信公众号", "telegram": "Telegram", "wecom": "企业微信", "cli": "终端"}
REVEALABLE = {"mobile": "手机", "credit_code": "统一社会信用代码"}

# Outbox status (and whether a retry has failed) → what staff read.
DELIVERY = {"sent": "已送达", "held": "待企业下次发消息时送达", "pending": "等待发送", "sending": "发送中",
            "failing": "发送失败，正在重试", "dead": "发送失败"}


@dataclass(frozen=True, slots=True)
class Line:
    """One message of the conversation."""

    direction: str  # in | out
    text: str
    at: datetime
    who: str  # 企业 | 机器人 | the commissioner's handle | 系统
    delivery: str = ""  # outgoing messages: a DELIVERY text
    delivery_class: str = ""  # sent | held | pending | failed


@dataclass
class CaseView:
    case: ServiceCase
    channel: str
    profile: dict[str, str]
    conversation: list[Line] = field(default_factory=list)
    live_active: bool = False
    colleagues: list[Commissioner] = field(default_factory=list)
    materials: list[CaseMaterial] = field(default_factory=list)  # without their bytes


def _who(author: str | None, direction: str) -> str:
    if direction == "in":
        return "企业"
    if not author or author == "bot":
        return "机器人"
    if author.startswith("commissioner:"):
        return author.split(":", 1)[1]
    return "系统"


def _delivery(row: Outbox) -> tuple[str, str]:
    status = row.status
    if status == "pending" and row.attempts and row.last_error:
        return DELIVERY["failing"], "failed"
    css = {"sent": "sent", "held": "held", "dead": "failed"}.get(status, "pending")
    return DELIVERY.get(status, status), css


async def load(session: AsyncSession, case: ServiceCase, revealed: frozenset[str] = frozenset()) -> CaseView:
    enterprise = case.enterprise
    def shown(field: str, value: str | None) -> str:
        return "-" if not value else value if field in revealed else redact(value)

    profile = {
        "企业": enterprise.name or "未登记",
        "联系人": enterprise.contact_name or "-",
        "手机": shown("mobile", enterprise.mobile),
        "统一社会信用代码": shown("credit_code", enterprise.credit_code),
        "区域": case.district or "-",
        "行业": enterprise.industry or "-",
    }
    identity = await session.get(ChannelIdentity, case.identity_id) if case.identity_id else None
    view = CaseView(case, CHANNEL_ZH.get(identity.channel, identity.channel) if identity else "无", profile)
    if identity is not None:
        view.conversation = await conversation(session, identity.id)
    view.live_active = await live.active_for_case(session, case) is not None
    view.materials = list(await materials.of_case(session, case.id))
    view.colleagues = list((await session.execute(
        select(Commissioner).where(Commissioner.active.is_(True)).order_by(Commissioner.handle))).scalars())
    return view


async def conversation(session: AsyncSession, identity_id: int) -> list[Line]:
    messages = await message_log.transcript(session, identity_id, limit=CONVERSATION_LIMIT)
    rows = select(Outbox).where(Outbox.identity_id == identity_id).order_by(Outbox.id.desc()).limit(
        2 * CONVERSATION_LIMIT)
    by_key: dict[tuple[str, str], list[Outbox]] = {}
    for row in reversed((await session.execute(rows)).scalars().all()):
        by_key.setdefault((str(row.payload.get("text", "")), row.created_at.isoformat()), []).append(row)
    lines = []
    for m in messages:
        delivery, css = "", ""
        if m.direction == "out":
            matched = by_key.get((m.text, m.created_at.isoformat()))
            if matched:
                delivery, css = _delivery(matched.pop(0))
            elif m.author in (None, "bot"):
                delivery, css = "已答复", "sent"  # the answer in the user's own request
        lines.append(Line(m.direction, m.text, m.created_at, _who(m.author, m.direction), delivery, css))
    return lines


async def fingerprint(session: AsyncSession, case_id: int) -> str:
    """Changes when anything on the case page changes: the case, its timeline, the conversation,
    a delivery state."""
    case = (await session.execute(select(ServiceCase.status, ServiceCase.updated_at, ServiceCase.identity_id)
                                  .where(ServiceCase.id == case_id))).first()
    if case is None:
        return "gone"
    # Counts, not max(id): PostgreSQL answers max(id) WHERE case_id = … by walking the primary key
    # backwards, which reads most of the table for an old case; a count uses the case_id index.
    parts = [str(case.status), str(case.updated_at), str((await session.execute(
        select(func.count(CaseEvent.id)).where(CaseEvent.case_id == case_id))).scalar())]
    if case.identity_id is not None:
        parts.append(str((await session.execute(
            select(func.count(MessageLog.id)).where(MessageLog.identity_id == case.identity_id))).scalar()))
        states = (await session.execute(
            select(Outbox.id, Outbox.status).where(Outbox.identity_id == case.identity_id)
            .order_by(Outbox.id.desc()).limit(50))).all()
        parts.append(",".join(f"{i}{s}" for i, s in states))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
