"""Outbox rows for WeCom: app messages to commissioners (channel ``wecom``) and, when a group
robot is configured, posts to the team chat (channel ``wecom_robot``).

Team posts mirror the notifications that concern the whole team (new, overdue and low-rated
cases). The app notifier writes them as outbox rows of their own, keyed by the text, so one
event notified to several commissioners is posted once, and a robot over its limit (about 20
messages a minute) delays a post instead of dropping it: :class:`TokenBucket` refuses when
empty, the row is retried later by the dispatcher, and nothing is lost.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.wecom.api import RATE_LIMITED, WeComApi, WeComError, WeComUnreachable, clip_bytes
from bot.channels.wecom.commands import CHANNEL, say
from bot.notify.base import Delivery, Notification, NotifierUnavailable
from bot.privacy import redact
from bot.services import desk, outbox
from bot.storage.db import transaction
from bot.storage.types import utcnow

log = logging.getLogger(__name__)

ROBOT_CHANNEL = "wecom_robot"
TEAM_KINDS = frozenset({"case_assigned", "case_escalated", "low_rating_followup"})


def compose(notification: Notification, public_url: str, *, hints: bool = True) -> str:
    """The notification (masked) with the WeCom commands that fit it and the console link."""
    text = desk.messenger_text(notification.text)
    number = notification.payload.get("case")
    if isinstance(number, str) and number:
        if hints and notification.kind not in ("case_cancelled", "low_rating_followup", "low_rating_comment"):
            text += "\n" + say("notification_hint", number=number, kind=notification.kind)
        link = desk.console_link(public_url, number)
        if link and link not in text:
            text += f"\n查看：{link}"
    return clip_bytes(text)


class TokenBucket:
    """``capacity`` sends, refilled evenly over ``period`` seconds."""

    def __init__(self, capacity: int = 20, period: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.rate, self.clock = capacity, capacity / period, clock
        self._tokens = float(capacity)
        self._at = clock()

    def take(self) -> bool:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def drain(self) -> None:
        self._tokens, self._at = 0.0, self.clock()


class WeComNotifier:
    channel = CHANNEL

    def __init__(self, api: WeComApi, sessions: async_sessionmaker[AsyncSession], *, public_url: str = "",
                 team: bool = False) -> None:
        self.api = api
        self.sessions = sessions
        self.public_url = public_url
        self.team = team

    async def deliver(self, notification: Notification) -> Delivery:
        try:
            await self.api.send_text(notification.recipient, compose(notification, self.public_url))
        except (WeComError, WeComUnreachable) as exc:
            raise NotifierUnavailable(str(exc)) from None
        if self.team and notification.kind in TEAM_KINDS:
            await self._post_to_team(notification)
        return Delivery.SENT

    async def _post_to_team(self, notification: Notification) -> None:
        text = compose(notification, self.public_url, hints=False)
        digest = hashlib.sha256(f"{notification.kind}|{text}".encode()).hexdigest()[:40]
        async with transaction(self.sessions) as session:
            await outbox.enqueue(
                session, channel=ROBOT_CHANNEL, recipient="team", kind=notification.kind,
                payload={"text": text, "case": notification.payload.get("case")}, now=utcnow(),
                dedup_key=f"{ROBOT_CHANNEL}:{digest}",
            )


class RobotNotifier:
    channel = ROBOT_CHANNEL

    def __init__(self, api: WeComApi, bucket: TokenBucket | None = None) -> None:
        self.api = api
        self.bucket = bucket or TokenBucket()

    async def deliver(self, notification: Notification) -> Delivery:
        if not self.bucket.take():
            raise NotifierUnavailable("group robot at its rate limit; the post waits for a later attempt")
        try:
            await self.api.robot_send(redact(notification.text))  # masked when queued; again, whoever queued it
        except WeComError as exc:
            if exc.errcode in RATE_LIMITED:
                self.bucket.drain()  # WeCom counts more than we did (another worker?): back off
            raise NotifierUnavailable(str(exc)) from None
        except WeComUnreachable as exc:
            raise NotifierUnavailable(str(exc)) from None
        return Delivery.SENT
