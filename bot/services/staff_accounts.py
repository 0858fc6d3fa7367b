"""Staff accounts of the console: creation, passwords (argon2id), disabling, and sign-in checks.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
profile); a hash made with weaker parameters is upgraded at the next sign-in. An unknown login
costs the same verification as a known one, so response times do not tell which logins exist.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import matching
from bot.storage.models import Commissioner
from bot.storage.staff import ROLES, StaffAccount

MIN_PASSWORD_CHARS = 10
_HASHER = PasswordHasher()
# Roles that act on cases through a commissioner (the staff actions need one).
ROLES_NEEDING_COMMISSIONER = ("commissioner", "supervisor")


class AccountError(ValueError):
    """A refused account operation; the message says why (in English, for the operator)."""


@functools.cache
def _dummy_hash() -> str:
    """What an unknown login is checked against. Made at the first sign-in, not at import: a
    hash costs about 0.2 s of CPU and 64 MiB, which every ``qibot`` command and every worker's
    start paid although most never check a password."""
    return _HASHER.hash("qibot-dummy-password-for-unknown-logins")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    return _HASHER.hash(password)


async def _hash_off_loop(password: str) -> str:
    """argon2 releases the GIL while it works; in a thread, a sign-in or a password change does
    not stall every chat served by the same event loop for the length of a hash."""
    return await asyncio.to_thread(hash_password, password)


def _verify(stored: str, password: str) -> bool:
    try:
        return bool(_HASHER.verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


async def by_login(session: AsyncSession, login: str) -> StaffAccount | None:
    return (await session.execute(select(StaffAccount).where(StaffAccount.login == login.strip().lower()))
            ).scalar_one_or_none()


async def add(
    session: AsyncSession, *, login: str, display_name: str, role: str, password: str,
    commissioner: str | None, now: datetime,
) -> StaffAccount:
    """A new account; ``commissioner`` is the handle of the commissioner it acts as."""
    login = login.strip().lower()
    if not login or len(login) > 40 or not all(c.isalnum() or c in "._-" for c in login):
        raise AccountError("the login must be 1-40 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"the role must be one of {', '.join(ROLES)}")
    if await by_login(session, login) is not None:
        raise AccountError(f"an account named {login} exists already")
    linked: Commissioner | None = None
    if commissioner:
        linked = await matching.find_commissioner(session, commissioner)
        if linked is None:
            raise AccountError(f"no commissioner has the handle {commissioner}")
    elif role in ROLES_NEEDING_COMMISSIONER:
        raise AccountError(f"a {role} account needs --commissioner HANDLE (the commissioner it acts as)")
    if role == "supervisor" and linked is not None and not linked.is_supervisor:
        raise AccountError(f"{linked.handle} is not a site supervisor (commissioner.is_supervisor)")
    account = StaffAccount(login=login, display_name=display_name.strip() or login, role=role,
                           password_hash=await _hash_off_loop(password), commissioner_id=linked.id if linked else None,
                           disabled=False, created_at=now, password_changed_at=now)
    session.add(account)
    await session.flush()
    return account


async def set_password(session: AsyncSession, login: str, password: str, now: datetime) -> StaffAccount:
    account = await _require(session, login)
    account.password_hash = await _hash_off_loop(password)
    account.password_changed_at = now
    return account


async def set_disabled(session: AsyncSession, login: str, disabled: bool) -> StaffAccount:
    account = await _require(session, login)
    account.disabled = disabled
    return account


async def listing(session: AsyncSession) -> Sequence[StaffAccount]:
    return (await session.execute(select(StaffAccount).order_by(StaffAccount.login))).scalars().all()


async def _require(session: AsyncSession, login: str) -> StaffAccount:
    account = await by_login(session, login)
    if account is None:
        raise AccountError(f"no account named {login}")
    return account


async def authenticate(session: AsyncSession, login: str, password: str, now: datetime) -> StaffAccount | None:
    """The account if the password is right and the account is enabled, else None (the same
    work either way). Upgrades an outdated hash and stamps the sign-in."""
    account = await by_login(session, login)
    stored = account.password_hash if account else await asyncio.to_thread(_dummy_hash)
    ok = await asyncio.to_thread(_verify, stored, password)
    if account is None or not ok or account.disabled:
        return None
    if _HASHER.check_needs_rehash(account.password_hash):
        account.password_hash = await asyncio.to_thread(_HASHER.hash, password)
    account.last_login_at = now
    return account
