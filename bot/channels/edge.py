"""What every request meets before a channel handles it: text fit for both databases, JSON of
bounded depth, paths of bounded length, the ``Origin`` of a browser's state-changing request,
the security headers, and WebSocket errors that stay WebSocket frames.

None of these is a channel's business logic; each one turns an input that used to end in a 5xx
(a lone surrogate, ``\\u0000`` on PostgreSQL, ``[[[[…]]]]``, a 5,000-character file name) into a
4xx or a cleaned value, the same way on every channel and both databases.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.messages import storable

MAX_JSON_DEPTH = 32
MAX_PATH_CHARS = 2048
MAX_SEGMENT_CHARS = 255  # a file name longer than NAME_MAX makes the OS raise, not "not found"
_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)  # an escape, a quote or a bracket

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def clean_text(text: str) -> str:
    """``text`` with what no database stores replaced by U+FFFD: lone surrogates (not encodable
    as UTF-8, refused by SQLite and PostgreSQL) and NUL (PostgreSQL), visibly, instead of failing
    the turn (:func:`bot.messages.storable`)."""
    return storable(text)


def clean_data(value: Any) -> Any:
    """:func:`clean_text` over every string of a parsed JSON value, keys included."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_data(v) for v in value]
    return value


class JsonTooDeep(ValueError):
    """Nested deeper than :data:`MAX_JSON_DEPTH`: refused before the parser recurses into it."""


def json_depth(text: str, stop_above: int = 1 << 30) -> int:
    """How deeply arrays and objects nest in ``text``, counted in one pass (strings and escapes
    skipped; malformed text is the parser's to refuse); stops once deeper than ``stop_above``."""
    depth = deepest = 0
    in_string = False
    for token in _TOKENS.finditer(text):
        mark = token.group()
        if mark == '"':
            in_string = not in_string
        elif in_string or mark[0] == "\\":
            continue
        elif mark in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_above:
                    break
        else:
            depth = max(depth - 1, 0)
    return deepest


def loads(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for input from outside: bounded nesting (deep input is a ``ValueError``,
    never a ``RecursionError``), and strings cleaned with :func:`clean_data`.

    Raises ``UnicodeDecodeError`` for bytes that are not UTF-8 and ``ValueError`` otherwise."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if json_depth(text, max_depth) > max_depth:
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
    try:
        return clean_data(json.loads(text))
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise JsonTooDeep("JSON nested too deeply") from None


# --------------------------------------------------------------------------- origins


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def allowed_origins(request: web.Request, public_url: str) -> frozenset[str]:
    """The origins the page is served from: ``QIBOT_PUBLIC_URL``'s, or (unset, for development on
    localhost) the request's own host under either scheme, since a proxy may end TLS before us."""
    return _origins("" if public_url else request.host, public_url)


@lru_cache(maxsize=64)
def _origins(host: str, public_url: str) -> frozenset[str]:
    """:func:`allowed_origins` by its inputs: every response asks (its security headers), and
    parsing the URLs again each time cost more than the rest of the headers (a bounded cache:
    the host is the client's to choose)."""
    if public_url:
        origin = _origin_of(public_url)
        return frozenset((origin,)) if origin else frozenset()
    return frozenset(o for o in (_origin_of(f"{scheme}://{host}") for scheme in ("http", "https")) if o)


def foreign_origin(request: web.Request, public_url: str) -> str | None:
    """The ``Origin`` of a browser request from another site, or None when it may proceed.

    A request without ``Origin`` does not come from a browser page (browsers send it on every
    WebSocket handshake and POST), so it carries no visitor's cookie by accident; ``null``
    (sandboxed frames, files) is foreign."""
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    if _origin_of(origin) in allowed_origins(request, public_url):
        return None
    return origin[:200]


# --------------------------------------------------------------------------- headers


def content_security_policy(request: web.Request, public_url: str) -> str:
    """No inline script or style, no framing, nothing fetched from elsewhere; the WebSocket's
    own origin named for browsers whose ``'self'`` does not cover ws:/wss:."""
    return _policy(allowed_origins(request, public_url))


@lru_cache(maxsize=64)
def _policy(origins: frozenset[str]) -> str:
    sockets = sorted(o.replace("http", "ws", 1) for o in origins)
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src " + " ".join(["'self'", *sockets]),
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def security_headers(public_url: str) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` hook: every response (pages, static files, API answers, errors,
    refusals) carries the headers; a handler's own value wins."""

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", content_security_policy(request, public_url))
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")

    return add


# --------------------------------------------------------------------------- paths and sockets


@web.middleware
async def bounded_paths(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A path longer than any route, or with a segment longer than a file name can be, is not
    found: static file lookups would otherwise raise ``OSError`` (file name too long)."""
    path = request.path
    if len(path) > MAX_PATH_CHARS or any(len(segment) > MAX_SEGMENT_CHARS for segment in path.split("/")):
        raise web.HTTPNotFound()
    return await handler(request)


#: The prepared WebSocket of a request whose connection was upgraded.
UPGRADED = web.RequestKey("qibot_websocket", web.WebSocketResponse)


def mark_upgraded(request: web.Request, ws: web.WebSocketResponse) -> None:
    """Remember that this request's connection now speaks WebSocket: an error from here on must
    close the socket, not write an HTTP response into the stream."""
    request[UPGRADED] = ws


def upgraded(request: web.Request) -> web.WebSocketResponse | None:
    ws = request.get(UPGRADED)
    return ws if ws is not None and ws.prepared else None
