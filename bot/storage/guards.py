"""Rows of the request guards at the edge: callback nonces already seen (replay protection) and
the server's own secrets (signing web session ids).

They live beside :mod:`bot.storage.models` on the same metadata (migration 0006); kept apart
because nothing in the domain refers to them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base
from bot.storage.types import utcnow


class SeenNonce(Base):
    """A signed callback (WeChat, WeCom) already received: its signature/timestamp/nonce, hashed,
    and the digest of its body. The same signed URL with another body is a replay; the row
    expires with the timestamp window, after which the signature itself is refused as stale."""

    __tablename__ = "seen_nonce"
    __table_args__ = (Index("ix_seen_nonce_expires_at", "expires_at"),)
    key: Mapped[str] = mapped_column(String(80), primary_key=True)  # channel:sha256(signature|timestamp|nonce)
    body_digest: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column()


class ServerSecret(Base):
    """A random secret every worker shares (created once by whichever worker starts first)."""

    __tablename__ = "server_secret"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
