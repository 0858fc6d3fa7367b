"""Masking of personal and enterprise identifiers wherever text leaves the data store in clear:
log lines, exports, notifications to cross-border services.

Mobiles become ``138****5678``; unified social credit codes and resident ID numbers keep their
first 6 and last 4 characters.
"""

from __future__ import annotations

import logging
import re

from intents.extract import CREDIT_CODE_RE, MOBILE_RE, mask_credit_code, mask_mobile

_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")


def redact(text: str) -> str:
    text = _RESIDENT_ID.sub(lambda m: m.group(1) + "********" + m.group(3)[-4:], text)
    text = CREDIT_CODE_RE.sub(lambda m: mask_credit_code(m.group(1)), text)
    return MOBILE_RE.sub(lambda m: mask_mobile(re.sub(r"\D", "", m.group(1))), text)


def mask_name(name: str | None, title: str = "专员") -> str:
    """``王小明`` → ``王专员``: enough for an enterprise to know who helps it, no more."""
    if not name:
        return title
    return name.strip()[0] + title


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with identifiers masked, so no handler ever sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "sqlalchemy.engine", "jieba"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
