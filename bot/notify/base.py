"""The contract between the outbox dispatcher and a channel's output half.

A notifier gets one :class:`Notification` (an outbox row) and either delivers it, says it
cannot push now but the message can be handed over at the recipient's next contact
(``HELD``), or raises: any exception means "try again later" and the dispatcher retries with
backoff. Notifiers must be idempotent per ``Notification.id`` where the platform allows it
(several workers may, rarely, deliver the same row twice after a crash mid-send).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol


class Delivery(enum.Enum):
    SENT = "sent"
    HELD = "held"  # not pushable now (no open socket, outside WeChat's 48 h window ...)


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    channel: str
    recipient: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    identity_id: int | None = None
    attempts: int = 0

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))


class NotifierUnavailable(Exception):
    """The notifier's service is down or refused for now; the dispatcher retries later."""


class Notifier(Protocol):
    channel: str

    async def deliver(self, notification: Notification) -> Delivery: ...
