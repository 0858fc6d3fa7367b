"""The resource libraries a manager keeps (6.3, 6.5): technical institutions and experts, added,
suspended, retired or reinstated, each change with its reason, its author and its time (the exit
mechanism). Matching offers only active ones (``matching.suggest_resources``).

The commissioners' library is kept the same way: skills (domains), site, districts served,
duty and capacity (the most open cases matching gives someone), suspension with a reason.
Managers keep everyone; a site supervisor keeps the people of their own site."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import matching
from bot.storage.models import Commissioner, Expert, Institution, Site
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


# --- commissioners (服务专员库: skills, sites, districts, duty, capacity) ------------------------

HANDLE_RE = re.compile(r"^[a-z][a-z0-9_.-]{1,39}$")
MAX_CAPACITY = 500


@dataclass(frozen=True, slots=True)
class CommissionerRow:
    """One line of the commissioners' library: the person, their site's name, their open load."""

    person: Commissioner
    site_name: str
    load: int

    @property
    def full(self) -> bool:
        cap = self.person.max_open_cases
        return cap is not None and self.load >= cap


@dataclass(frozen=True, slots=True)
class CommissionerFields:
    """What a manager (or a site supervisor, for their site) sets on a commissioner."""

    name: str
    domains: Sequence[str]
    site_id: int | None
    districts: Sequence[str]
    max_open_cases: str  # as typed: empty for no limit
    supervisor: bool = False


def _capacity(raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_CAPACITY:  # "²".isdigit() is True
        raise LibraryError(f"同时在办上限应为 1–{MAX_CAPACITY} 的整数，或留空表示不限")
    return int(raw)


def _districts(values: Sequence[str], allowed: Sequence[str]) -> list[str]:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise LibraryError(f"未知的区：{', '.join(unknown)[:60]}")
    return list(dict.fromkeys(values))


async def _site(session: AsyncSession, site_id: int | None, sites: frozenset[int] | None) -> int | None:
    """The site to set: it must exist, and a site supervisor (``sites`` given) keeps people in
    their own sites."""
    if site_id is not None and await session.get(Site, site_id) is None:
        raise LibraryError("没有这个站点")
    if sites is not None and site_id not in sites:
        raise LibraryError("站点负责人只能管理本站点的服务专员")
    return site_id


async def commissioners(session: AsyncSession, sites: frozenset[int] | None = None) -> list[CommissionerRow]:
    """Everyone (``sites`` None) or the people of these sites, active first, with their open load
    as matching counts it."""
    stmt = select(Commissioner, Site.name).outerjoin(Site, Site.id == Commissioner.site_id)
    if sites is not None:
        stmt = stmt.where(Commissioner.site_id.in_(sites))
    rows = (await session.execute(stmt.order_by(Commissioner.active.desc(), Commissioner.handle))).all()
    load = await matching.open_load(session)
    return [CommissionerRow(person, site or "", load.get(person.id, 0)) for person, site in rows]


async def add_commissioner(session: AsyncSession, *, handle: str, fields: CommissionerFields,
                           allowed_districts: Sequence[str], sites: frozenset[int] | None, actor: str,
                           now: datetime) -> Commissioner:
    handle = handle.strip().lower()
    if not HANDLE_RE.match(handle):
        raise LibraryError("登录名须为 2–40 位小写字母、数字或 _ . -，以字母开头")
    if await session.scalar(select(Commissioner.id).where(Commissioner.handle == handle)):
        raise LibraryError(f"登录名 {handle} 已被使用")
    person = Commissioner(handle=handle, name=_name(fields.name, "姓名", 80), domains=_domains(fields.domains),
                          site_id=await _site(session, fields.site_id, sites),
                          districts=_districts(fields.districts, allowed_districts),
                          max_open_cases=_capacity(fields.max_open_cases), on_duty=True, active=True,
                          is_supervisor=fields.supervisor and sites is None, status_reason="入库",
                          status_changed_at=now, status_changed_by=actor, created_at=now)
    session.add(person)
    await session.flush()
    return person


async def _editable(session: AsyncSession, commissioner_id: int, sites: frozenset[int] | None) -> Commissioner:
    person = await session.get(Commissioner, commissioner_id)
    if person is None or (sites is not None and person.site_id not in sites):
        raise LibraryError("没有这位服务专员")  # outside a supervisor's site: as if absent
    return person


async def edit_commissioner(session: AsyncSession, commissioner_id: int, *, fields: CommissionerFields,
                            on_duty: bool, allowed_districts: Sequence[str], sites: frozenset[int] | None
                            ) -> tuple[Commissioner, list[str]]:
    """Change skills, site, districts, capacity, duty (and, for managers, the supervisor flag);
    returns the person and what changed, in words for the audit log."""
    person = await _editable(session, commissioner_id, sites)
    wanted = {
        "name": _name(fields.name, "姓名", 80),
        "domains": _domains(fields.domains),
        "site_id": await _site(session, fields.site_id, sites),
        "districts": _districts(fields.districts, allowed_districts),
        "max_open_cases": _capacity(fields.max_open_cases),
        "on_duty": on_duty,
    }
    if sites is None:
        wanted["is_supervisor"] = fields.supervisor
    changed = []
    for key, value in wanted.items():
        if getattr(person, key) != value:
            changed.append(f"{key}: {getattr(person, key)!r} → {value!r}")
            setattr(person, key, value)
    if not changed:
        raise LibraryError("没有改动")
    return person, changed


async def set_commissioner_active(session: AsyncSession, commissioner_id: int, active: bool, reason: str,
                                  actor: str, now: datetime, sites: frozenset[int] | None) -> Commissioner:
    """Suspend (no new cases, no sign-in as them) or reinstate, with a reason. A suspended
    commissioner's open cases stay theirs until transferred: the list shows the load."""
    person = await _editable(session, commissioner_id, sites)
    if person.active == active:
        raise LibraryError("该服务专员已是“在岗”" if active else "该服务专员已是“暂停”")
    person.active = active
    person.status_reason = _name(reason, "原因", 500)
    person.status_changed_at, person.status_changed_by = now, actor
    return person
