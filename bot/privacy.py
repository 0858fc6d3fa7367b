"""Masking of personal and enterprise identifiers wherever text leaves the data store in clear:
log lines (with their tracebacks), exports, archives, notifications to messengers.

Mobiles become ``138****5678``; unified social credit codes and resident ID numbers keep their
first 6 and last 4 characters.

The bot recognises a number after normalising the text (full-width and mathematical digits,
zero-width characters and soft hyphens, spaces and dashes inside it), so masking looks at the
same normalised views (:mod:`intents.extract`: ``recognised_view``, ``code_view``,
``compact_view``) and maps each match back onto the original text: whatever spelling the
recognisers accept is masked, and the text around it stays as written. As a last guard the
recognisers themselves are run on the result; should they still find a number (a spelling
only the word-level normalisation produces), every digit of the text is masked.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
import unicodedata
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from types import TracebackType
from typing import Any

from intents.extract import (
    CREDIT_CODE_RE,
    MOBILE_RE,
    TextView,
    code_text,
    code_view,
    compact_text,
    compact_view,
    find_mobiles,
    mask_credit_code,
    mask_mobile,
    recognised_text,
    recognised_view,
    variants_may_add_digits,
)

#: Resident ID number (18 characters, the last may be X), spaces or dashes allowed between digits.
RESIDENT_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d(?:[\s\-]?\d){16}[\s\-]?[\dXx])(?![0-9A-Za-z])")
_MIN_DIGITS = 6  # fewer digits than the shortest number masked here (a credit code's region part)
_Span = tuple[int, int, str]


def _mask_id(number: str) -> str:
    compact = re.sub(r"[\s\-]", "", number)
    return compact[:6] + "*" * (len(compact) - 10) + compact[-4:].upper()


def _matches(view: TextView, pattern: re.Pattern[str], mask: Callable[[str], str]) -> Iterable[_Span]:
    for match in pattern.finditer(view.text):
        start, end = view.original_span(*match.span(1))
        yield start, end, mask(match.group(1))


def _mask_mobile_match(number: str) -> str:
    return mask_mobile(re.sub(r"\D", "", number))


#: (view, what to find in it, its mask), longest formats first: an overlapping shorter match loses.
_SEARCHES: tuple[tuple[str, re.Pattern[str], Callable[[str], str]], ...] = (
    ("recognised", RESIDENT_ID_RE, _mask_id),
    ("compact", RESIDENT_ID_RE, _mask_id),
    ("code", CREDIT_CODE_RE, mask_credit_code),
    ("compact", CREDIT_CODE_RE, mask_credit_code),
    ("recognised", MOBILE_RE, _mask_mobile_match),
    ("compact", MOBILE_RE, _mask_mobile_match),
)
_FAST = {"recognised": recognised_text, "code": code_text, "compact": compact_text}
_WITH_OFFSETS = {"recognised": recognised_view, "code": code_view, "compact": compact_view}


def _spans(text: str) -> list[_Span]:
    """Every masked number as (start, end, replacement) in ``text``, longest formats first, no
    overlaps. Each view is matched first without offsets; only a hit pays for the offsets."""
    fast: dict[str, str] = {}
    views: dict[str, TextView] = {}
    candidates: list[_Span] = []
    for kind, pattern, mask in _SEARCHES:
        if kind not in fast:
            fast[kind] = _FAST[kind](text)
        if pattern.search(fast[kind]) is None:
            continue
        if kind not in views:
            views[kind] = _WITH_OFFSETS[kind](text)
        candidates.extend(_matches(views[kind], pattern, mask))
    chosen: list[_Span] = []
    for span in candidates:
        if all(span[1] <= c[0] or span[0] >= c[1] for c in chosen):
            chosen.append(span)
    return sorted(chosen)


def _apply(text: str, spans: list[_Span]) -> str:
    parts: list[str] = []
    at = 0
    for start, end, replacement in spans:
        parts.append(text[at:start])
        parts.append(replacement)
        at = end
    parts.append(text[at:])
    return "".join(parts)


def _few_digits(text: str) -> bool:
    """Cheap pre-check for the common log line: too few digits (in any spelling) to hold a number."""
    folded = text if text.isascii() else unicodedata.normalize("NFKC", text)
    return sum(map(str.isnumeric, folded)) < _MIN_DIGITS


def _still_recognised(text: str) -> bool:
    """The recogniser still finds a mobile: only possible where ``normalize``'s word variants
    write a digit the views do not show (credit codes are recognised on the code view itself)."""
    return variants_may_add_digits(text) and bool(find_mobiles(text))


def redact(text: str) -> str:
    """``text`` with every mobile, credit code and resident ID number masked, in any spelling
    the bot would accept it in."""
    if not text or _few_digits(text):
        return text
    for _ in range(3):  # a match can hide behind a longer overlapping one: look again
        spans = _spans(text)
        if not spans:
            break
        text = _apply(text, spans)
    if _still_recognised(text):
        text = "".join("*" if ch.isnumeric() or _has_digit(ch) else ch for ch in text)
    return text


def _has_digit(ch: str) -> bool:
    return not ch.isascii() and any(c.isdigit() for c in unicodedata.normalize("NFKC", ch))


def redact_data(value: Any) -> Any:
    """A JSON-like structure with every string in it masked (keys too). Masking the serialised
    JSON instead would miss numbers JSON escapes (a newline inside a mobile is ``\\n`` there)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


def mask_name(name: str | None, title: str = "专员") -> str:
    """``王小明`` → ``王专员``: enough for an enterprise to know who helps it, no more."""
    if not name:
        return title
    return name.strip()[0] + title


_TRACEBACKS = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Rewrites each record with identifiers masked, so no handler ever sees them: the message
    with its arguments, the exception text and traceback (which quote user text: SQL parameters,
    ``ValueError`` messages), and the stack information."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # wrong arguments: logging would print them raw in its error report
            message = f"{record.msg} {record.args!r}"
        masked = redact(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class OneLineClientErrors(logging.Filter):
    """aiohttp logs a request it cannot parse (an oversized header, a malformed request line)
    with a full traceback: a client's mistake, written once per request, that fills the log.
    It becomes one warning line naming the client and the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 400) < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            # aiohttp quotes the offending bytes (an oversized Cookie is a session id): cut them off.
            reason = re.sub(r"[:\s]*b['\"].*", "", " ".join(str(exc.message or type(exc).__name__).split()))[:200]
            record.msg, record.args = "bad HTTP request from %s refused with %d: %s", (remote, exc.code or 400, reason)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_CLIENT_ERRORS = OneLineClientErrors()


def install_client_error_filter() -> None:
    """Idempotent: the app factory and ``configure_logging`` both call it."""
    server = logging.getLogger("aiohttp.server")
    if _CLIENT_ERRORS not in server.filters:
        server.addFilter(_CLIENT_ERRORS)


def _masked_excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, exc, tb))))


# The id of the HTTP request (or turn) being served, on every log line written meanwhile: set by
# the app's middleware, read by RequestIdFilter. "-" outside a request (start-up, jobs).
REQUEST_ID: ContextVar[str] = ContextVar("qibot_request_id", default="-")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def _json_formatter() -> logging.Formatter:
    """One JSON object a line (python-json-logger). The record reaches it already masked by
    RedactingFilter; the traceback it would format again from ``exc_info`` is masked here, and
    so is every extra field a caller attached."""
    from pythonjsonlogger.json import JsonFormatter

    class MaskedJsonFormatter(JsonFormatter):
        def formatException(self, ei: Any) -> str:
            text = super().formatException(ei)
            return redact(text if isinstance(text, str) else "\n".join(text))

        def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
            return {key: redact_data(value) for key, value in log_record.items()}

    return MaskedJsonFormatter("%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
                               rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})


def configure_logging(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(_json_formatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "sqlalchemy.engine", "jieba", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    install_client_error_filter()
    sys.excepthook = _masked_excepthook  # an uncaught error's traceback is masked like a log line
