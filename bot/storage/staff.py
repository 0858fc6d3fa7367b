"""Rows of the staff console: accounts, their server-side sessions, and the audit log.

Beside :mod:`bot.storage.models` on the same metadata (migration 0007). The audit table is
append-only: no code path updates or deletes it, and database triggers refuse both (on SQLite and
PostgreSQL), so not even a hand-written statement rewrites history. It therefore holds plain ids
(no foreign keys whose ``ON DELETE`` would update it) and the login and case number as written.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base
from bot.storage.types import utcnow

ROLES = ("commissioner", "supervisor", "manager", "admin")


class StaffAccount(Base):
    """A person who signs in to the console. ``commissioner_id`` links the account to the
    commissioner it acts as (staff actions need one); managers and administrators may have none."""

    __tablename__ = "staff_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id, PHC string
    role: Mapped[str] = mapped_column(String(20))  # one of ROLES
    commissioner_id: Mapped[int | None] = mapped_column(ForeignKey("commissioner.id", ondelete="SET NULL"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()
    password_changed_at: Mapped[datetime | None] = mapped_column()


class StaffSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's random token is stored, so the
    table never holds a value that could be replayed as someone's session."""

    __tablename__ = "staff_session"
    __table_args__ = (Index("ix_staff_session_account", "account_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    address: Mapped[str | None] = mapped_column(String(64))


class StaffLoginLink(Base):
    """A one-time sign-in link sent to the commissioner's linked Telegram or WeCom: only the
    SHA-256 of its token is stored; it expires after minutes and works once."""

    __tablename__ = "staff_login_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class StaffAudit(Base):
    """One staff action: who, what, when, on which case. Append-only (see the module docstring)."""

    __tablename__ = "staff_audit"
    __table_args__ = (Index("ix_staff_audit_created", "created_at"), Index("ix_staff_audit_case", "case_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    account_id: Mapped[int | None] = mapped_column(Integer)
    login: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[int | None] = mapped_column(Integer)
    case_number: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")
