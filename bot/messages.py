"""The channel-neutral message types every layer speaks.

A channel adapter turns a platform payload into one :class:`InboundMessage`; the dialogue
engine answers with :class:`Reply` values that the adapter renders in its own format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from bot.storage.types import utcnow

#: What neither SQLite nor PostgreSQL stores in text: lone surrogates (not encodable as UTF-8)
#: and NUL (PostgreSQL). Replaced by U+FFFD at the edge of every channel.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with :data:`UNSTORABLE` characters replaced by U+FFFD (the same rule on both
    databases, so an input never succeeds on one and fails on the other)."""
    return UNSTORABLE.sub("\ufffd", text) if UNSTORABLE.search(text) else text


@dataclass(frozen=True, slots=True)
class InboundMessage:
    channel: str  # webchat | cli | wechat | telegram | wecom
    user_id: str  # the channel's own id for the user (openid, chat id, session id)
    text: str
    message_id: str | None = None  # the channel's id of this message; retries repeat it
    timestamp: datetime = field(default_factory=utcnow)
    kind: str = "text"  # text | event | image | voice | file | location
    event: str | None = None  # subscribe, unsubscribe, click:<key> ...
    language: str | None = None  # a channel hint; the NLU decides when None
    # A reference to media the user sent (e.g. "wechat-media:<MediaId>"), attached to the
    # enterprise's open case as material; the channel knows how to fetch it.
    attachment: str | None = None
    # Where a web request came from (behind trusted proxies, the client's address): per-address
    # limits count it (bot/services/limits.py). None for channels that relay through a platform.
    client_ip: str | None = None

    def __post_init__(self) -> None:
        # The last edge for every channel (the terminal chat too): whatever an adapter let
        # through, nothing unstorable reaches the turn's transaction.
        for name in ("user_id", "text", "message_id"):
            value = getattr(self, name)
            if value and UNSTORABLE.search(value):
                object.__setattr__(self, name, storable(value))


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    # Short answers the user can tap instead of typing (web chat buttons, WeChat menu hints).
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TurnResult:
    replies: tuple[Reply, ...]
    duplicate: bool = False  # the message id was seen before; replies are the first answer's
