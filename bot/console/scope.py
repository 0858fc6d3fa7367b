"""Which cases a staff member may see: the ownership half of every console authorisation.

* commissioner: cases they own or are assigned, and cases of their site (by the district the
  site serves, or the site of the person holding the case) in their domains (skills), plus
  consultations without a domain yet;
* supervisor: every case of their site, and their own;
* manager, admin: every case.

The rule is one SQL condition (:func:`case_condition`), used for the inbox lists and for the
check on a single case, so a case missing from someone's inbox is also refused on its page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.auth import StaffPrincipal
from bot.services.cases import GENERAL_DOMAIN
from bot.storage.models import Commissioner, ServiceCase, Site


@dataclass(frozen=True, slots=True)
class Scope:
    principal: StaffPrincipal
    commissioner: Commissioner | None
    districts: frozenset[str]
    domains: frozenset[str]

    def condition(self) -> ColumnElement[bool]:
        return case_condition(self)


def _district_forms(district: str) -> set[str]:
    """Sites name a district ``湖里``, cases ``湖里区``: both spellings match."""
    bare = district.removesuffix("区")
    return {bare, bare + "区"}


async def scope_of(session: AsyncSession, principal: StaffPrincipal) -> Scope:
    commissioner = await session.get(Commissioner, principal.commissioner_id) if principal.commissioner_id else None
    districts: set[str] = set()
    if principal.site_ids:
        for district in (await session.execute(select(Site.district).where(Site.id.in_(principal.site_ids)))).scalars():
            if district:
                districts |= _district_forms(district)
    domains = frozenset(commissioner.domains or ()) | {GENERAL_DOMAIN} if commissioner else frozenset()
    return Scope(principal, commissioner, frozenset(districts), domains)


def case_condition(scope: Scope) -> ColumnElement[bool]:
    principal = scope.principal
    if principal.sees_all:
        return true()
    mine: ColumnElement[bool] = false()
    if principal.commissioner_id is not None:
        mine = or_(ServiceCase.owner_id == principal.commissioner_id,
                   ServiceCase.assignee_id == principal.commissioner_id)
    if not principal.site_ids:
        return mine
    colleagues = select(Commissioner.id).where(Commissioner.site_id.in_(principal.site_ids))
    of_site = or_(ServiceCase.district.in_(scope.districts) if scope.districts else false(),
                  ServiceCase.owner_id.in_(colleagues),
                  and_(ServiceCase.owner_id.is_(None), ServiceCase.assignee_id.in_(colleagues)))
    if principal.role == "supervisor":
        return or_(mine, of_site)
    return or_(mine, and_(of_site, ServiceCase.domain.in_(scope.domains)))


async def visible_case(session: AsyncSession, scope: Scope, number: str) -> ServiceCase | None:
    """The case with this number if the scope may see it (None either way otherwise: a case
    outside one's scope is indistinguishable from one that does not exist)."""
    from bot.services.cases import get_case

    return await get_case(session, number, case_condition(scope))  # one statement: found and allowed
