"""Signing in and out of the console.

``GET /console/login`` first makes sure the browser's own cookie could be read: a link followed
from another site (a Telegram or WeCom notification) does not carry a SameSite=Strict cookie,
so the page bounces once through a same-site reload before asking for a password the person
may not need. Failed attempts are throttled per login and per address (``QIBOT_LIMIT_LOGIN*``).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from aiohttp import web

from bot.console import login_link, sessions
from bot.console.auth import audit, build_principal, context, principal_of, remember_fresh_token, require_staff
from bot.console.auth import check_csrf as verify_csrf
from bot.console.render import page
from bot.services import staff_accounts
from bot.storage.db import transaction

log = logging.getLogger(__name__)
_PRE_TOKEN = web.RequestKey("console_pre_token", str)


def safe_next(target: str | None) -> str:
    """Only a path inside the console: never another site (``//evil``, ``/\\evil``, a scheme)."""
    if not target or not target.startswith("/console") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/console/"
    return target


def _ensure_pre_token(request: web.Request) -> None:
    """A browser without a console cookie gets one with the page, so its form has a token."""
    if not request.cookies.get(sessions.PRE_COOKIE) and not request.cookies.get(sessions.COOKIE):
        token = sessions.new_token()
        request[_PRE_TOKEN] = token
        remember_fresh_token(request, token)


def _page_with_cookie(request: web.Request, name: str, values: dict[str, str], status: int = 200
                      ) -> web.Response:
    response = page(request, name, values, status=status)
    token = request.get(_PRE_TOKEN)
    if isinstance(token, str):
        sessions.set_cookie(response, request, context(request).deps.settings, sessions.PRE_COOKIE, token)
    return response


def _login_page(request: web.Request, target: str, error: str = "", status: int = 200, notice: str = ""
                ) -> web.Response:
    return _page_with_cookie(request, "login.html", {"next": target, "error": error, "notice": notice},
                             status=status)


async def login_form(request: web.Request) -> web.StreamResponse:
    target = safe_next(request.query.get("next"))
    if await principal_of(request) is not None:
        raise web.HTTPFound(target)
    has_cookie = bool(request.cookies.get(sessions.COOKIE) or request.cookies.get(sessions.PRE_COOKIE))
    if not has_cookie and request.query.get("b") != "1":
        # Maybe a cross-site arrival without the Strict cookie: one same-site reload shows it.
        return page(request, "bounce.html", {"url": f"/console/login?b=1&next={quote(target, safe='')}"})
    _ensure_pre_token(request)
    return _login_page(request, target)


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    await verify_csrf(request, fields)
    target = safe_next(fields.get("next"))
    login, password = fields.get("login", "").strip()[:40], fields.get("password", "")[:1000]
    ctx = context(request)
    address = sessions.address_of(request, ctx.deps.settings)
    limiter = ctx.deps.limits
    if limiter is not None and not await limiter.login_allowed(login, address):
        return _login_page(request, target, "尝试次数过多，请稍后再试。", status=429)
    now = ctx.deps.clock()
    token = None
    async with transaction(ctx.deps.sessions) as session:
        account = await staff_accounts.authenticate(session, login, password, now) if login and password else None
        principal = await build_principal(session, account) if account is not None else None
        if account is not None and principal is not None:
            token = await sessions.start(session, account, address, now)
            await audit(session, principal, "login", None, f"from {address or '-'}")
    if token is None:
        if limiter is not None:
            await limiter.login_failed(login, address)
        log.info("console sign-in refused for %r from %s", login[:40], address)
        return _login_page(request, target, "账号或密码不正确，或账号已停用。", status=401)
    response = web.HTTPSeeOther(target)
    sessions.set_cookie(response, request, ctx.deps.settings, sessions.COOKIE, token)
    sessions.clear_cookie(response, sessions.PRE_COOKIE)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    principal = await require_staff(request)
    form = await request.post()
    await verify_csrf(request, {k: str(v) for k, v in form.items() if isinstance(v, str)})
    ctx = context(request)
    async with transaction(ctx.deps.sessions) as session:
        await audit(session, principal, "logout", None, "")
        await sessions.end(session, request.cookies.get(sessions.COOKIE))
    response = web.HTTPSeeOther("/console/login?b=1")
    sessions.clear_cookie(response)
    raise response


async def request_link(request: web.Request) -> web.StreamResponse:
    """Send a one-time sign-in link to the account's linked Telegram or WeCom (same answer
    whether or not it could: nothing to learn about which logins exist)."""
    fields = {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}
    await verify_csrf(request, fields)
    login = fields.get("login", "").strip()[:40]
    ctx = context(request)
    address = sessions.address_of(request, ctx.deps.settings)
    limiter = ctx.deps.limits
    if limiter is not None:
        if not await limiter.login_allowed(login, address):
            return _login_page(request, "/console/", "尝试次数过多，请稍后再试。", status=429)
        await limiter.login_failed(login, address)  # each request counts: links are not free to send
    async with transaction(ctx.deps.sessions) as session:
        sent = await login_link.send(session, login, ctx.deps.settings.public_url, ctx.deps.clock()) if login else False
    if sent:
        ctx.deps.wake()
    return _login_page(request, "/console/", notice="如果该账号已关联 Telegram 或企业微信，一次性登录链接已发送，"
                       f"{login_link.LINK_MINUTES} 分钟内有效。")


async def link_form(request: web.Request) -> web.StreamResponse:
    """The page a link opens: a button, so a messenger's preview (a GET) does not use the link."""
    _ensure_pre_token(request)
    return _page_with_cookie(request, "login_link.html", {"token": request.match_info["token"][:100]})


async def link_submit(request: web.Request) -> web.StreamResponse:
    fields = {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}
    await verify_csrf(request, fields)
    ctx = context(request)
    now = ctx.deps.clock()
    address = sessions.address_of(request, ctx.deps.settings)
    token = None
    async with transaction(ctx.deps.sessions) as session:
        account = await login_link.consume(session, request.match_info["token"], now)
        principal = await build_principal(session, account) if account is not None else None
        if account is not None and principal is not None:
            account.last_login_at = now
            token = await sessions.start(session, account, address, now)
            await audit(session, principal, "login", None, f"one-time link from {address or '-'}")
    if token is None:
        return _login_page(request, "/console/", "登录链接无效、已过期或已使用，请重新获取或用密码登录。", status=401)
    response = web.HTTPSeeOther("/console/")
    sessions.set_cookie(response, request, ctx.deps.settings, sessions.COOKIE, token)
    sessions.clear_cookie(response, sessions.PRE_COOKIE)
    raise response


def setup(app: web.Application) -> None:
    app.router.add_get("/console/login", login_form)
    app.router.add_post("/console/login/link", request_link)
    app.router.add_get("/console/login/link/{token}", link_form)
    app.router.add_post("/console/login/link/{token}", link_submit)
    app.router.add_post("/console/login", login_submit)
    app.router.add_post("/console/logout", logout)
