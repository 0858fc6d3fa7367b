"""The resource libraries a manager keeps (6.3, 6.5): technical institutions and experts, added,
suspended, retired or reinstated, each change with its reason, its author and its time (the exit
mechanism). Matching offers only active ones (``matching.suggest_resources``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Expert, Institution
from intents.labels import DOMAIN_NAMES_ZH

STATUS_ZH = {"active": "在库", "suspended": "暂停", "retired": "退出"}
KINDS = ("institution", "expert")


class LibraryError(ValueError):
    """A change that cannot be made; the message (Chinese, for staff) says why."""


def _domains(codes: Sequence[str]) -> list[str]:
    unknown = [c for c in codes if c not in DOMAIN_NAMES_ZH or c == "out_of_scope"]
    if unknown:
        raise LibraryError(f"未知的服务领域：{', '.join(unknown)[:60]}")
    if not codes:
        raise LibraryError("请至少选择一个服务领域")
    return list(dict.fromkeys(codes))


def _name(text: str, what: str, limit: int) -> str:
    text = " ".join(text.split())
    if not text:
        raise LibraryError(f"请填写{what}")
    if len(text) > limit:
        raise LibraryError(f"{what}不超过 {limit} 字")
    return text


async def add_institution(session: AsyncSession, *, name: str, kind: str, domains: Sequence[str],
                          district: str, contact: str, actor: str, now: datetime) -> Institution:
    name = _name(name, "机构名称", 200)
    if await session.scalar(select(Institution.id).where(Institution.name == name)):
        raise LibraryError(f"机构“{name}”已在库中")
    found = Institution(name=name, kind=_name(kind, "机构类别", 40), domains=_domains(domains),
                        district=district.strip()[:40] or None, contact=contact.strip()[:200] or None,
                        status="active", status_reason="入库", status_changed_at=now, status_changed_by=actor,
                        created_at=now)
    session.add(found)
    await session.flush()
    return found


async def add_expert(session: AsyncSession, *, name: str, title: str, domains: Sequence[str],
                     institution_id: int | None, contact: str, actor: str, now: datetime) -> Expert:
    if institution_id is not None and await session.get(Institution, institution_id) is None:
        raise LibraryError("所属机构不存在")
    found = Expert(name=_name(name, "专家姓名", 80), title=title.strip()[:80] or None, domains=_domains(domains),
                   institution_id=institution_id, contact=contact.strip()[:200] or None, status="active",
                   status_reason="入库", status_changed_at=now, status_changed_by=actor, created_at=now)
    session.add(found)
    await session.flush()
    return found


async def set_status(session: AsyncSession, kind: str, entity_id: int, status: str, reason: str, actor: str,
                     now: datetime) -> Institution | Expert:
    """Suspend, retire or reinstate; a reason is always required (it is the record of the exit)."""
    if kind not in KINDS:
        raise LibraryError("未知的资源类别")
    if status not in STATUS_ZH:
        raise LibraryError("状态须为在库、暂停或退出")
    entity: Institution | Expert | None = (
        await session.get(Institution, entity_id) if kind == "institution" else await session.get(Expert, entity_id))
    if entity is None:
        raise LibraryError("没有这条资源")
    if entity.status == status:
        raise LibraryError(f"该资源已是“{STATUS_ZH[status]}”")
    if entity.status == "retired" and status != "active":
        raise LibraryError("已退出的资源只能重新入库")
    entity.status, entity.status_reason = status, _name(reason, "原因", 500)
    entity.status_changed_at, entity.status_changed_by = now, actor
    return entity


async def listing(session: AsyncSession) -> tuple[Sequence[Institution], Sequence[Expert]]:
    institutions = (await session.execute(select(Institution).order_by(Institution.status, Institution.name))).scalars()
    experts = (await session.execute(select(Expert).order_by(Expert.status, Expert.name))).scalars()
    return institutions.all(), experts.all()
