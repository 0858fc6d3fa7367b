"""The web chat channel: the platform's website channel and the default way to try the bot.

``GET /`` serves a plain HTML page; it talks to the engine over a WebSocket
(``/api/chat/ws``) with an HTTP fallback (``POST /api/chat/messages``). A random session
cookie identifies the visitor; only its SHA-256 digest is stored, so the database never
holds a value that could be replayed as someone's session.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import weakref
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from bot.config import Settings
from bot.messages import InboundMessage, Reply, TurnResult
from bot.notify.base import Delivery, Notification
from bot.services import identities, message_log
from bot.storage.db import transaction
from intents.normalize import to_script

log = logging.getLogger(__name__)

CHANNEL = "webchat"
COOKIE = "qibot_session"
STATIC_DIR = Path(__file__).parent / "static"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_MAX_ID = 128


class WebChatHub:
    """Open WebSockets per visitor, for pushing messages that do not answer a request
    (a commissioner's reply, a status change)."""

    def __init__(self) -> None:
        self._sockets: dict[str, weakref.WeakSet[web.WebSocketResponse]] = {}

    def add(self, user_id: str, ws: web.WebSocketResponse) -> None:
        self._sockets.setdefault(user_id, weakref.WeakSet()).add(ws)

    def discard(self, user_id: str, ws: web.WebSocketResponse) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._sockets[user_id]

    async def push(self, user_id: str, replies: tuple[Reply, ...]) -> int:
        """Send to every open page of the visitor; returns how many pages got it."""
        delivered = 0
        for ws in list(self._sockets.get(user_id, ())):
            if ws.closed:
                continue
            await ws.send_json({"type": "push", "replies": [_reply_json(r) for r in replies]})
            delivered += 1
        return delivered


HUB = web.AppKey("webchat_hub", WebChatHub)


class WebChatNotifier:
    """Pushes outbox messages to the visitor's open pages; with none open, the message is held
    and shown with the reply to the visitor's next message (it is in the history already)."""

    channel = CHANNEL

    def __init__(self, hub: WebChatHub) -> None:
        self.hub = hub

    async def deliver(self, notification: Notification) -> Delivery:
        text = to_script(notification.text, notification.payload.get("script", "hans"))
        delivered = await self.hub.push(notification.recipient, (Reply(text),))
        return Delivery.SENT if delivered else Delivery.HELD


def user_id_for(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:40]


def _reply_json(reply: Reply) -> dict[str, Any]:
    return {"text": reply.text, "choices": list(reply.choices)}


def _result_json(result: TurnResult, in_reply_to: str | None) -> dict[str, Any]:
    return {
        "type": "replies",
        "in_reply_to": in_reply_to,
        "duplicate": result.duplicate,
        "replies": [_reply_json(r) for r in result.replies],
    }


def _session_token(request: web.Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return token if token and _TOKEN.match(token) else None


def _set_cookie(response: web.StreamResponse, token: str, settings: Settings) -> None:
    response.set_cookie(
        COOKIE, token, max_age=180 * 24 * 3600, httponly=True, samesite="Lax", secure=settings.cookie_secure
    )


def _parse_outgoing(payload: Any) -> tuple[str, str | None]:
    """Validate a message from the page: ``{"text": str, "id": str?}``."""
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    text = payload.get("text")
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    message_id = payload.get("id")
    if message_id is not None and (not isinstance(message_id, str) or not 0 < len(message_id) <= _MAX_ID):
        raise ValueError(f"'id' must be a string of 1-{_MAX_ID} characters")
    return text, message_id


def setup(app: web.Application, runtime_key: web.AppKey[Any], settings: Settings) -> None:
    hub = WebChatHub()
    app[HUB] = hub

    async def register_notifier(app: web.Application) -> None:
        app[runtime_key].dispatcher.register(WebChatNotifier(hub))

    app.on_startup.append(register_notifier)

    async def index(request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC_DIR / "index.html")
        if _session_token(request) is None:
            _set_cookie(response, secrets.token_urlsafe(32), settings)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def post_message(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            payload = json.loads(raw.decode("utf-8"))
            text, message_id = _parse_outgoing(payload)
        except UnicodeDecodeError:
            return web.json_response({"error": "request body is not valid UTF-8"}, status=400)
        except ValueError as exc:
            return web.json_response({"error": f"invalid message: {exc}"}, status=400)
        token = _session_token(request)
        new_token = token is None
        token = token or secrets.token_urlsafe(32)
        result = await request.app[runtime_key].dialogue.handle(
            InboundMessage(channel=CHANNEL, user_id=user_id_for(token), text=text, message_id=message_id)
        )
        response = web.json_response(_result_json(result, message_id))
        if new_token:
            _set_cookie(response, token, settings)
        return response

    async def history(request: web.Request) -> web.Response:
        token = _session_token(request)
        if token is None:
            return web.json_response({"messages": []})
        runtime = request.app[runtime_key]
        async with transaction(runtime.sessions) as session:
            identity = await identities.find(session, CHANNEL, user_id_for(token))
            messages = [] if identity is None else await message_log.transcript(session, identity.id)
        return web.json_response(
            {
                "messages": [
                    {"direction": m.direction, "text": m.text, "at": m.created_at.isoformat(), "author": m.author}
                    for m in messages
                ]
            }
        )

    async def websocket(request: web.Request) -> web.StreamResponse:
        token = _session_token(request)
        if token is None:
            return web.json_response({"error": "no chat session; open / first"}, status=401)
        user_id = user_id_for(token)
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=settings.max_body_bytes)
        await ws.prepare(request)
        hub.add(user_id, ws)
        dialogue = request.app[runtime_key].dialogue
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    if frame.type == WSMsgType.BINARY:
                        await ws.send_json({"type": "error", "error": "binary frames are not supported"})
                    continue
                try:
                    payload = json.loads(frame.data)
                    if not isinstance(payload, dict) or payload.get("type") != "message":
                        kind = payload.get("type") if isinstance(payload, dict) else None
                        raise ValueError(f"unknown frame type {kind!r}")
                    text, message_id = _parse_outgoing(payload)
                except ValueError as exc:  # includes JSONDecodeError
                    await ws.send_json({"type": "error", "error": str(exc)})
                    continue
                result = await dialogue.handle(
                    InboundMessage(channel=CHANNEL, user_id=user_id, text=text, message_id=message_id)
                )
                await ws.send_json(_result_json(result, message_id))
        finally:
            hub.discard(user_id, ws)
        return ws

    app.router.add_get("/", index)
    app.router.add_post("/api/chat/messages", post_message)
    app.router.add_get("/api/chat/history", history)
    app.router.add_get("/api/chat/ws", websocket)
    app.router.add_static("/static/", STATIC_DIR, show_index=False)
