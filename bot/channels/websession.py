"""Web chat session ids that only the server issues, and their rotation.

A session id is ``<random>.<mac>``: 24 random bytes and an HMAC of them under a secret every
worker shares (the ``server_secret`` table, created by the first worker that starts). A cookie
without a valid MAC was not issued here (a client-chosen or planted id, or one from before this
scheme) and is replaced by a fresh id, so nobody can fix a visitor's session in advance.

When a visitor gives personal data (a mobile, credit code or ID number), the session id is
rotated: the visitor's identity moves to a new id, and the old one, which someone may have seen
or planted, leads to an empty conversation from then on. Over HTTP the response sets the new
cookie; over a WebSocket the page receives a one-time ticket (bound to the old id, valid for two
minutes) and exchanges it for the cookie at ``POST /api/chat/session``, since a WebSocket cannot
set cookies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.privacy import redact
from bot.storage.db import transaction
from bot.storage.dialect import insert_ignore
from bot.storage.guards import ServerSecret
from bot.storage.models import ChannelIdentity, Outbox
from bot.storage.types import utcnow

SECRET_NAME = "webchat-session"
_ID = re.compile(r"^[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{22}$")
_TICKET = re.compile(r"^([A-Za-z0-9_.-]{55})~(\d{1,12})~([A-Za-z0-9_-]{32})$")
TICKET_SECONDS = 120


def _mac(secret: bytes, message: str, length: int) -> str:
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:length]


class SessionIds:
    """Issues, verifies and rotates session ids under one shared secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    async def load(cls, sessions: async_sessionmaker[AsyncSession]) -> SessionIds:
        """The shared secret: the first worker to start creates it, the others read the same row."""
        async with transaction(sessions) as session:
            await insert_ignore(
                session, ServerSecret.__table__,
                {"name": SECRET_NAME, "value": secrets.token_hex(32), "created_at": utcnow()},
                ("name",), returning="name",
            )
            found = await session.execute(select(ServerSecret.value).where(ServerSecret.name == SECRET_NAME))
            value = found.scalar_one()
        return cls(bytes.fromhex(value))

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{_mac(self._secret, 'session|' + nonce, 22)}"

    def verify(self, token: str | None) -> str | None:
        """``token`` if this server issued it, else None."""
        if not token or not _ID.match(token):
            return None
        nonce, mac = token.split(".")
        return token if hmac.compare_digest(mac, _mac(self._secret, "session|" + nonce, 22)) else None

    def ticket(self, old_user_id: str, new_token: str, now: float | None = None) -> str:
        """What the page exchanges for the new cookie; only the holder of the old id can."""
        expires = int(now if now is not None else time.time()) + TICKET_SECONDS
        mac = _mac(self._secret, f"rotate|{old_user_id}|{new_token}|{expires}", 32)
        return f"{new_token}~{expires}~{mac}"

    def redeem(self, ticket: str, old_user_id: str, now: float | None = None) -> str | None:
        """The new session id of a valid, unexpired ticket issued for ``old_user_id``."""
        match = _TICKET.match(ticket) if isinstance(ticket, str) else None
        if match is None:
            return None
        new_token, expires, mac = match.groups()
        if int(expires) < (now if now is not None else time.time()) or self.verify(new_token) is None:
            return None
        expected = _mac(self._secret, f"rotate|{old_user_id}|{new_token}|{expires}", 32)
        return new_token if hmac.compare_digest(mac, expected) else None


def gives_personal_data(text: str) -> bool:
    """The message holds a mobile, credit code or ID number (in any spelling the bot accepts)."""
    return redact(text) != text


async def move_identity(sessions: async_sessionmaker[AsyncSession], channel: str, old_id: str, new_id: str) -> bool:
    """Give the visitor's identity (history, state, cases) and the messages waiting for it the
    new id; False when the old id has no identity (nothing to protect)."""
    async with transaction(sessions) as session:
        moved = await session.execute(
            update(ChannelIdentity)
            .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == old_id)
            .values(external_id=new_id)
        )
        if not cast("CursorResult[Any]", moved).rowcount:  # an UPDATE's result is a CursorResult
            return False
        await session.execute(
            update(Outbox).where(Outbox.channel == channel, Outbox.recipient == old_id).values(recipient=new_id)
        )
    return True
