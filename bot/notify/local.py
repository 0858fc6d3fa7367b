"""Notifiers that need no external service: the console inbox, the log, the terminal chat."""

from __future__ import annotations

import logging

from bot.notify.base import Delivery, Notification
from bot.privacy import redact

log = logging.getLogger("qibot.notify")


class ConsoleNotifier:
    """The commissioners' and managers' console inbox. The outbox row itself is the inbox item
    (the console lists a recipient's rows), so delivering means recording that it is there."""

    channel = "console"

    async def deliver(self, notification: Notification) -> Delivery:
        log.info("console inbox %s: %s: %s", notification.recipient, notification.kind,
                 redact(notification.text)[:300])
        return Delivery.SENT


class LogNotifier:
    """Writes notifications to the log (masked): for development and as an audit trail."""

    channel = "log"

    async def deliver(self, notification: Notification) -> Delivery:
        log.info("notify %s %s: %s", notification.recipient, notification.kind, redact(notification.text)[:300])
        return Delivery.SENT


class TerminalNotifier:
    """``qibot chat`` cannot be pushed to: messages wait for the user's next line."""

    channel = "cli"

    async def deliver(self, notification: Notification) -> Delivery:
        return Delivery.HELD
