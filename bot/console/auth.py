"""STAND-IN for the console's accounts, sessions, CSRF and audit (issue 15), written by the
manager helper ONLY so its pages and tests run; the lead replaces this module with the real one
at merge. It has exactly the contract of the real module:

    StaffPrincipal, require_staff(request, *roles), csrf_token(request), check_csrf(request, form),
    audit(session, principal, action, case_id, detail)

Sign-in here is only what a test puts in ``app[STAND_IN_PRINCIPALS]`` (cookie value →
principal): a fresh app knows nobody, so every page redirects to the login page. Not for
production: no passwords, no expiry, the audit goes to a list and the log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)
COOKIE = "qibot_staff"


@dataclass(frozen=True, slots=True)
class StaffPrincipal:
    account_id: int
    login: str
    display_name: str
    role: str  # "commissioner" | "supervisor" | "manager" | "admin"
    commissioner_id: int | None
    site_ids: frozenset[int]  # empty for manager/admin = all


STAND_IN_PRINCIPALS = web.AppKey("stand_in_principals", dict)
AUDIT_LOG: list[tuple[str, str, int | None, str]] = []  # (login, action, case id, detail)


def _token(request: web.Request) -> str:
    return request.cookies.get(COOKIE, "")


async def require_staff(request: web.Request, *roles: str) -> StaffPrincipal:
    """The signed-in staff member: no session → 302 to the login page; wrong role → 403."""
    known: dict[str, StaffPrincipal] = request.app.get(STAND_IN_PRINCIPALS, {})
    principal = known.get(_token(request))
    if principal is None:
        raise web.HTTPFound(f"/console/login?next={request.path_qs}")
    if roles and principal.role not in roles:
        raise web.HTTPForbidden(text="您没有权限访问此页面")
    return principal


def csrf_token(request: web.Request) -> str:
    return hmac.new(b"stand-in", _token(request).encode(), hashlib.sha256).hexdigest()


async def check_csrf(request: web.Request, form: Mapping[str, str]) -> None:
    given = form.get("csrf", "")
    if not given or not hmac.compare_digest(given, csrf_token(request)):
        raise web.HTTPForbidden(text="表单已失效，请刷新页面后重试")


async def audit(session: AsyncSession, principal: StaffPrincipal, action: str, case_id: int | None,
                detail: str) -> None:
    AUDIT_LOG.append((principal.login, action, case_id, detail))
    log.info("audit %s %s case=%s %s", principal.login, action, case_id, detail)
