"""Who is asking, and may they: the staff principal of a console request, CSRF tokens, and the
audit of what staff do. The contract every console module (and the manager pages) uses:

* ``await require_staff(request, *roles)`` → :class:`StaffPrincipal`, or a redirect to the
  sign-in page (no or expired session) or a 403 page (a role not listed; ``admin`` passes every
  check);
* ``csrf_token(request)`` for forms (templates get it as ``csrf``), ``await check_csrf(request,
  form)`` on every POST;
* ``await audit(session, principal, action, case_id, detail)`` in the action's transaction.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels import edge
from bot.console import sessions
from bot.console.context import CONSOLE, ConsoleContext
from bot.services import audit as audit_log
from bot.storage.db import transaction
from bot.storage.models import Commissioner, ServiceCase
from bot.storage.staff import StaffAccount
from bot.storage.types import utcnow


@dataclass(frozen=True, slots=True)
class StaffPrincipal:
    account_id: int
    login: str
    display_name: str
    role: str  # "commissioner" | "supervisor" | "manager" | "admin"
    commissioner_id: int | None
    site_ids: frozenset[int]  # sites whose cases they may see (empty for manager/admin = all)

    @property
    def sees_all(self) -> bool:
        return self.role in ("manager", "admin")


# The clock of the app serving this request (tests move it); set when the principal is looked up,
# so audit() keeps the contract's signature and still stamps the service's own time.
_CLOCK: ContextVar[Callable[[], datetime]] = ContextVar("console_clock")
PRINCIPAL = web.RequestKey("console_principal", StaffPrincipal)
_FRESH_TOKEN = web.RequestKey("console_fresh_token", str)  # a cookie set by this very response


def context(request: web.Request) -> ConsoleContext:
    ctx = request.app[CONSOLE]
    _CLOCK.set(ctx.deps.clock)
    return ctx


def login_url(request: web.Request) -> str:
    return "/console/login?next=" + quote(request.path_qs, safe="")


async def principal_of(request: web.Request) -> StaffPrincipal | None:
    """The signed-in staff member, or None (no cookie, unknown, idle too long, disabled)."""
    if PRINCIPAL in request:
        return request[PRINCIPAL]
    ctx = context(request)
    token = request.cookies.get(sessions.COOKIE)
    if not token:
        return None
    async with transaction(ctx.deps.sessions) as session:
        found = await sessions.lookup(session, token, ctx.deps.clock(),
                                      timedelta(minutes=ctx.deps.settings.console_idle_minutes))
        if found is None:
            return None
        principal = await build_principal(session, found.account)
    if principal is None:
        return None
    request[PRINCIPAL] = principal
    _sync_template_context(request)
    return principal


def _sync_template_context(request: web.Request) -> None:
    """aiohttp-jinja2 runs its context processors in a middleware, before the handler knows who
    is asking; the dict they filled is read at render time, so it is brought up to date here."""
    values = request.get(aiohttp_jinja2.REQUEST_CONTEXT_KEY)
    if isinstance(values, dict):
        values["staff"] = request.get(PRINCIPAL)
        values["csrf"] = csrf_token(request)


async def build_principal(session: AsyncSession, account: StaffAccount) -> StaffPrincipal | None:
    """The principal of an enabled account; None when its commissioner has left."""
    if account.disabled:
        return None
    site_ids: frozenset[int] = frozenset()
    if account.commissioner_id is not None:
        person = await session.get(Commissioner, account.commissioner_id)
        if person is None or not person.active:
            return None  # the commissioner left: the account cannot act for them any more
        if account.role in ("commissioner", "supervisor"):
            site_ids = frozenset({person.site_id}) if person.site_id is not None else frozenset()
    return StaffPrincipal(account.id, account.login, account.display_name, account.role,
                          account.commissioner_id, site_ids)


async def require_staff(request: web.Request, *roles: str) -> StaffPrincipal:
    """The principal, if signed in and (when ``roles`` are given) in one of them."""
    principal = await principal_of(request)
    if principal is None:
        raise web.HTTPFound(login_url(request))
    if roles and principal.role not in roles and principal.role != "admin":
        raise forbidden(request, "您的角色无权访问此页面。")
    return principal


def forbidden(request: web.Request, message: str) -> web.HTTPForbidden:
    from bot.console.render import error_page  # the renderer imports this module

    return web.HTTPForbidden(text=error_page(request, 403, message), content_type="text/html")


def remember_fresh_token(request: web.Request, token: str) -> None:
    """The cookie this response sets (sign-in, first visit of the login page): the CSRF token of
    the page rendered in the same response derives from it."""
    request[_FRESH_TOKEN] = token
    _sync_template_context(request)


def csrf_token(request: web.Request) -> str:
    """The token every console form carries (templates: ``{{ csrf }}``); empty without a cookie."""
    value = request.get(_FRESH_TOKEN) or request.cookies.get(sessions.COOKIE) \
        or request.cookies.get(sessions.PRE_COOKIE)
    return sessions.csrf_for(value) if value else ""


async def check_csrf(request: web.Request, form: Mapping[str, str]) -> None:
    """403 unless the form carries this browser's token and the request is not from another site."""
    expected = csrf_token(request)
    given = str(form.get("csrf", ""))
    foreign = edge.foreign_origin(request, context(request).deps.settings.public_url)
    if foreign is not None or not expected or not hmac.compare_digest(expected, given):
        raise forbidden(request, "表单已过期或来源不明，请刷新页面后重试。")


async def audit(session: AsyncSession, principal: StaffPrincipal, action: str, case_id: int | None,
                detail: str) -> None:
    """Record a staff action in the append-only audit log (inside the action's transaction)."""
    number = None
    if case_id is not None:
        case = await session.get(ServiceCase, case_id)
        number = case.number if case is not None else None
    await audit_log.record(session, account_id=principal.account_id, login=principal.login, role=principal.role,
                           action=action, case_id=case_id, case_number=number, detail=detail,
                           now=_CLOCK.get(utcnow)())
