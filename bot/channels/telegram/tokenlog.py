"""Keeping the bot token out of the logs: every Bot API URL contains it."""

from __future__ import annotations

import logging


class _Scrub(logging.Filter):
    """Replaces the token in a record's message, should one get through at any level."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "<telegram-token>"), None
        return True


def quiet_token_logging(token: str) -> None:
    """httpx logs every request URL at INFO, and a Bot API URL contains the token: its records
    (and httpcore's) are kept at WARNING and above, and scrubbed of the token in any case."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if not any(isinstance(f, _Scrub) and f.secret == token for f in logger.filters):
            logger.addFilter(_Scrub(token))
