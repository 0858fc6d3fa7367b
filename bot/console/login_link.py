"""Optional sign-in by a one-time link sent to the commissioner's linked Telegram or WeCom.

Asking for a link answers the same whether or not the login exists or has a messenger (nothing
to enumerate). The link carries a random token of letters only (so the messengers' masking of
digit runs never touches it); only its SHA-256 is stored; it expires after ``LINK_MINUTES`` and
works once. Opening it shows a button: the sign-in happens on the POST, so a messenger's link
preview (a GET) cannot use it up.
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.sessions import token_hash
from bot.services import outbox
from bot.storage.models import Commissioner
from bot.storage.staff import StaffAccount, StaffLoginLink

LINK_MINUTES = 10
_LETTERS = string.ascii_letters


def _token() -> str:
    return "".join(secrets.choice(_LETTERS) for _ in range(40))


async def send(session: AsyncSession, login: str, public_url: str, now: datetime) -> bool:
    """Write the link to the account's linked messengers; False when there is nowhere to send
    it (the caller answers the same either way)."""
    account = (await session.execute(select(StaffAccount).where(StaffAccount.login == login.strip().lower()))
               ).scalar_one_or_none()
    if account is None or account.disabled or account.commissioner_id is None or not public_url:
        return False
    person = await session.get(Commissioner, account.commissioner_id)
    routes = [(c, r) for c, r in (("telegram", person.telegram_chat_id if person else None),
                                  ("wecom", person.wecom_user_id if person else None)) if r]
    if not routes:
        return False
    token = _token()
    session.add(StaffLoginLink(token_hash=token_hash(token), account_id=account.id, created_at=now,
                               expires_at=now + timedelta(minutes=LINK_MINUTES)))
    link = f"{public_url.rstrip('/')}/console/login/link/{token}"
    text = f"控制台一次性登录链接（{LINK_MINUTES} 分钟内有效，仅可使用一次；如非本人操作请忽略）：\n{link}"
    for channel, recipient in routes:
        await outbox.enqueue(session, channel=channel, recipient=recipient, kind="console_login_link",
                             payload={"text": text, "commissioner": person.handle if person else ""}, now=now)
    return True


async def consume(session: AsyncSession, token: str, now: datetime) -> StaffAccount | None:
    """The account the link signs in, marking it used; None when unknown, expired or used."""
    if not token or len(token) > 100:
        return None
    used = await session.execute(
        update(StaffLoginLink)
        .where(StaffLoginLink.token_hash == token_hash(token), StaffLoginLink.used_at.is_(None),
               StaffLoginLink.expires_at > now)
        .values(used_at=now).returning(StaffLoginLink.account_id)
    )
    account_id = used.scalar_one_or_none()
    if account_id is None:
        return None
    account = await session.get(StaffAccount, account_id)
    return account if account is not None and not account.disabled else None
