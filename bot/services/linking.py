"""Commissioners' messenger accounts: one-time link codes, and who is behind a chat.

A Telegram account is linked by a code the commissioner gets from the CLI or console and sends
to the bot (``/link CODE``); a username is never proof of identity, since anyone can choose one.
Only the code's SHA-256 is stored, it expires (15 minutes by default) and it works once, so a
leaked database or an old screenshot links nobody. WeCom user ids come from the corporation's
own directory and arrive in callbacks signed by WeCom, so an administrator may also set them
directly (``qibot commissioner set-wecom``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.cases import CaseError
from bot.storage.models import Commissioner

CODE_TTL = timedelta(minutes=15)
# Crockford-like alphabet without 0/O and 1/I/L: codes are typed from a screen. 10 characters
# of 31 symbols are ~49 bits, far beyond guessing within 15 minutes.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10


class LinkError(CaseError):
    """The code is unknown, used or expired, or the account cannot be linked; says why."""


def code_hash(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def normalize_code(code: str) -> str:
    """Codes are case-insensitive and may be typed with spaces or dashes."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


async def issue_code(session: AsyncSession, commissioner: Commissioner, now: datetime,
                     ttl: timedelta = CODE_TTL) -> str:
    """A fresh code for ``commissioner``; any earlier unused code stops working."""
    if not commissioner.active:
        raise LinkError(f"{commissioner.name} 已停用，不能绑定")
    code = "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))
    commissioner.link_code_hash = code_hash(code)
    commissioner.link_code_expires_at = now + ttl
    await session.flush()
    return code


async def redeem(session: AsyncSession, code: str, now: datetime) -> Commissioner:
    """The commissioner the code was issued to, spending the code.

    The same message answers a wrong and a used code, so the answer does not tell a guesser
    which codes once existed."""
    if not normalize_code(code):
        raise LinkError("请在绑定命令后附上绑定码")
    commissioner = (
        await session.execute(select(Commissioner).where(Commissioner.link_code_hash == code_hash(code)))
    ).scalar_one_or_none()
    if commissioner is None:
        raise LinkError("绑定码无效或已使用，请向管理员重新获取")
    expired = commissioner.link_code_expires_at is None or commissioner.link_code_expires_at <= now
    commissioner.link_code_hash, commissioner.link_code_expires_at = None, None
    if expired:
        raise LinkError("绑定码已过期，请重新获取（有效期 15 分钟）")
    if not commissioner.active:
        raise LinkError(f"{commissioner.name} 已停用，不能绑定")
    return commissioner


async def link_telegram(session: AsyncSession, code: str, chat_id: str, now: datetime) -> Commissioner:
    """Redeem ``code`` and route the commissioner's notifications to ``chat_id``. A chat serves
    one commissioner: linking it again moves it (the column is unique)."""
    commissioner = await redeem(session, code, now)
    await session.execute(
        update(Commissioner).where(Commissioner.telegram_chat_id == chat_id, Commissioner.id != commissioner.id)
        .values(telegram_chat_id=None)
    )
    commissioner.telegram_chat_id = chat_id
    await session.flush()
    return commissioner


async def link_wecom(session: AsyncSession, code: str, user_id: str, now: datetime) -> Commissioner:
    """Redeem ``code`` for a WeCom user id (the self-service alternative to ``set_wecom``)."""
    commissioner = await redeem(session, code, now)
    await set_wecom(session, commissioner, user_id)
    return commissioner


async def set_wecom(session: AsyncSession, commissioner: Commissioner, user_id: str | None) -> None:
    """Set (or with None clear) the WeCom UserID; refuses one that belongs to someone else."""
    if user_id:
        other = (
            await session.execute(
                select(Commissioner).where(Commissioner.wecom_user_id == user_id, Commissioner.id != commissioner.id)
            )
        ).scalar_one_or_none()
        if other is not None:
            raise LinkError(f"企业微信账号 {user_id} 已绑定到 {other.name}（{other.handle}），请先解除")
    commissioner.wecom_user_id = user_id or None
    await session.flush()


async def by_telegram(session: AsyncSession, chat_id: str) -> Commissioner | None:
    """The active commissioner linked to this Telegram chat, if any."""
    return (
        await session.execute(
            select(Commissioner).where(Commissioner.telegram_chat_id == chat_id, Commissioner.active.is_(True))
        )
    ).scalar_one_or_none()


async def by_wecom(session: AsyncSession, user_id: str) -> Commissioner | None:
    """The active commissioner with this WeCom UserID, if any."""
    return (
        await session.execute(
            select(Commissioner).where(Commissioner.wecom_user_id == user_id, Commissioner.active.is_(True))
        )
    ).scalar_one_or_none()
