"""Console sessions, stored server-side in the database so every worker sees them.

The cookie holds a random token; the database holds only its SHA-256, so a copy of the table
signs nobody in. A session ends at sign-out, when the account is disabled, or after
``QIBOT_CONSOLE_IDLE_MINUTES`` without a request. The cookie is HttpOnly, SameSite=Strict, scoped
to ``/console`` and Secure whenever the request came over HTTPS (directly or through a trusted
proxy that says so) or ``QIBOT_COOKIE_SECURE`` is set.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.services.limits import client_address, parse_networks
from bot.storage.staff import StaffAccount, StaffSession

COOKIE = "qibot_console"
PRE_COOKIE = "qibot_console_pre"  # before sign-in: binds the login form's CSRF token to this browser
COOKIE_PATH = "/console"
TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often per session


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_for(cookie_value: str) -> str:
    """The CSRF token of a browser: derived from its HttpOnly cookie, which another site can
    neither read nor set, so a form posted from elsewhere cannot carry it."""
    return hmac.new(cookie_value.encode(), b"qibot-console-csrf", hashlib.sha256).hexdigest()[:40]


def address_of(request: web.Request, settings: Settings) -> str | None:
    return client_address(request.remote, request.headers.get("X-Forwarded-For"),
                          parse_networks(settings.trusted_proxies))


def is_https(request: web.Request, settings: Settings) -> bool:
    """HTTPS as the browser sees it: the request itself, or a trusted proxy's X-Forwarded-Proto."""
    if request.secure or settings.cookie_secure:
        return True
    if _from_trusted_proxy(request.remote, parse_networks(settings.trusted_proxies)):
        return request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower() == "https"
    return False


def _from_trusted_proxy(remote: str | None, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def set_cookie(response: web.StreamResponse, request: web.Request, settings: Settings, name: str,
               value: str) -> None:
    response.set_cookie(name, value, path=COOKIE_PATH, httponly=True, samesite="Strict",
                        secure=is_https(request, settings))


def clear_cookie(response: web.StreamResponse, name: str = COOKIE) -> None:
    response.del_cookie(name, path=COOKIE_PATH)


@dataclass(frozen=True, slots=True)
class Found:
    account: StaffAccount
    session: StaffSession


async def start(session: AsyncSession, account: StaffAccount, address: str | None, now: datetime) -> str:
    """A new session for ``account``; returns the token for the cookie."""
    token = new_token()
    session.add(StaffSession(token_hash=token_hash(token), account_id=account.id, created_at=now,
                             last_seen_at=now, address=(address or "")[:64] or None))
    return token


async def lookup(session: AsyncSession, token: str | None, now: datetime, idle: timedelta) -> Found | None:
    """The live session of this token (touched), or None: unknown, idle too long (deleted), or
    its account disabled."""
    if not token or len(token) > 100:
        return None
    row = (await session.execute(
        select(StaffSession, StaffAccount).join(StaffAccount, StaffAccount.id == StaffSession.account_id)
        .where(StaffSession.token_hash == token_hash(token))
    )).first()
    if row is None:
        return None
    staff_session, account = row
    if account.disabled or now - staff_session.last_seen_at > idle:
        await session.delete(staff_session)
        return None
    if now - staff_session.last_seen_at >= TOUCH_EVERY:
        staff_session.last_seen_at = now
    return Found(account, staff_session)


async def alive(session: AsyncSession, token: str | None, now: datetime, idle: timedelta) -> bool:
    """Whether the session still stands, without counting this as activity (an open page's
    event stream must not keep an unattended console signed in)."""
    if not token or len(token) > 100:
        return False
    row = (await session.execute(
        select(StaffSession.last_seen_at, StaffAccount.disabled).join(StaffAccount)
        .where(StaffSession.token_hash == token_hash(token))
    )).first()
    return row is not None and not row.disabled and now - row.last_seen_at <= idle


async def end(session: AsyncSession, token: str | None) -> None:
    if token:
        await session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))


async def end_all(session: AsyncSession, account_id: int) -> None:
    """Sign the account out everywhere (its password changed, or it was disabled)."""
    await session.execute(delete(StaffSession).where(StaffSession.account_id == account_id))
