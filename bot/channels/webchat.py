"""The web chat channel: the platform's website channel and the default way to try the bot.

``GET /`` serves a plain HTML page; it talks to the engine over a WebSocket
(``/api/chat/ws``) with an HTTP fallback (``POST /api/chat/messages``). A random session
cookie identifies the visitor; only its SHA-256 digest is stored, so the database never
holds a value that could be replayed as someone's session.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import WSCloseCode, WSMsgType, web

from bot import metrics
from bot.channels import edge
from bot.channels.base import ChannelDeps
from bot.channels.websession import SessionIds, gives_personal_data, move_identity
from bot.config import Settings
from bot.events import EventBus, Handler
from bot.messages import InboundMessage, Reply, TurnResult
from bot.notify.base import Delivery, Notification
from bot.privacy import mask_name
from bot.services import identities, live, materials, message_log, outbox
from bot.services.followups import scale as rating_scale
from bot.services.limits import Refusal, client_address, parse_networks
from bot.storage.db import transaction
from bot.storage.models import Commissioner, ServiceCase
from bot.storage.outage import OUTAGE, is_unavailable
from intents.normalize import to_script

log = logging.getLogger(__name__)

CHANNEL = "webchat"
COOKIE = "qibot_session"
STATIC_DIR = Path(__file__).parent / "static"
_MAX_ID = 128
UPLOAD_MAX = 10 * 1024 * 1024  # bytes of one uploaded material
UPLOAD_TYPES = materials.INLINE_TYPES | {"application/pdf"}
# A rating request's buttons, best first; the labels are the words the rating handler also reads.
RATING_CHOICES = ("5", "4", "3", "2", "1")
_MAX_LABEL = 24
TURN_GRACE = 20.0  # seconds a shutdown waits for WebSocket turns in flight before closing the sockets


class WebChatHub:
    """The pages open on this process, by visitor, and the pushes that reach them.

    A push is an event on the visitor's topic (:mod:`bot.events`): this hub subscribes to the
    topic while it holds a socket of that visitor, so whichever process delivers the outbox row
    (this one, another ``qibot serve`` worker, the delivery worker) reaches the page through
    Redis. The database stays the record: what a page may have missed (no socket at the
    moment of the push, Redis restarting) is caught up from the held outbox rows when a socket
    opens and when the Redis subscription comes back."""

    def __init__(self) -> None:
        self._sockets: dict[str, weakref.WeakSet[web.WebSocketResponse]] = {}
        self._handlers: dict[str, Handler] = {}
        self.events: EventBus | None = None
        self.deps: ChannelDeps | None = None
        self.closing = False  # shutting down: turns in flight finish, no new one starts
        self._turns = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Around a WebSocket turn, so a shutdown lets it finish and answer before closing."""
        self._turns += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._turns -= 1
            if self._turns == 0:
                self._idle.set()

    async def drain(self, grace: float) -> None:
        """Graceful shutdown: take no new turn, wait (up to ``grace`` seconds) for those in flight to
        answer, then close the sockets so the pages reconnect to another worker."""
        self.closing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        await self.close_all()

    def start(self, deps: ChannelDeps) -> None:
        self.deps = deps
        self.events = deps.events or EventBus()
        self.events.on_resync(self.catch_up_all)

    async def add(self, user_id: str, ws: web.WebSocketResponse) -> None:
        self._sockets.setdefault(user_id, weakref.WeakSet()).add(ws)
        if user_id not in self._handlers:
            handler = self._handlers[user_id] = self._receiver(user_id)
            if self.events is not None:
                await self.events.subscribe(topic(user_id), handler)

    async def discard(self, user_id: str, ws: web.WebSocketResponse) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._sockets[user_id]
                handler = self._handlers.pop(user_id, None)
                if handler is not None and self.events is not None:
                    await self.events.unsubscribe(topic(user_id), handler)

    async def close_all(self) -> None:
        """On shutdown: close every page's socket at once (1001, going away), so a restart does not
        wait for open pages and they start reconnecting to another worker right away."""
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server restarting")

    def _receiver(self, user_id: str) -> Handler:
        async def receive(frame: dict[str, Any]) -> None:
            await self._send(user_id, frame)
        return receive

    async def _send(self, user_id: str, frame: dict[str, Any]) -> int:
        delivered = 0
        for ws in list(self._sockets.get(user_id, ())):
            if ws.closed:
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):  # closing meanwhile: history has it
                await ws.send_json(frame)
                delivered += 1
        return delivered

    async def push(self, user_id: str, replies: tuple[Reply, ...], kind: str = "status", event: str = "") -> int:
        """Publish to every open page of the visitor, on any worker; returns how many processes
        hold one (0: none is open). ``kind`` is how the page shows the replies (a message_log
        notice kind); ``event`` the notification kind."""
        frame = push_frame(replies, kind, event)
        if self.events is None:  # not started (no app): this process's pages only
            return await self._send(user_id, frame)
        return await self.events.publish(topic(user_id), frame)

    async def catch_up(self, user_id: str) -> int:
        """Push what the database holds for the visitor and no page has shown yet (outbox rows
        held while no socket of theirs was reachable); marks them delivered."""
        if self.deps is None or user_id not in self._sockets:
            return 0
        async with transaction(self.deps.sessions) as session:
            identity = await identities.find(session, CHANNEL, user_id)
            replies = await outbox.take_held(session, identity.id, self.deps.clock()) if identity else ()
        if not replies:
            return 0
        return await self._send(user_id, push_frame(replies, "status", "catch_up"))

    async def catch_up_all(self) -> None:
        for user_id in list(self._sockets):
            try:
                await self.catch_up(user_id)
            except Exception:
                log.exception("webchat: catching up a page failed; it gets the rest with its next reply")


def topic(user_id: str) -> str:
    return f"webchat:{user_id}"


def push_frame(replies: tuple[Reply, ...], kind: str, event: str) -> dict[str, Any]:
    return {"type": "push", "event": event, "replies": [_reply_json(r, kind=kind) for r in replies]}


HUB = web.AppKey("webchat_hub", WebChatHub)


class WebChatNotifier:
    """Pushes outbox messages to the visitor's open pages, on whichever worker holds them; with
    none open, the message is held and shown with the reply to the visitor's next message, or
    when a page of theirs next connects (it is in the history already)."""

    channel = CHANNEL

    def __init__(self, hub: WebChatHub | None = None, events: EventBus | None = None) -> None:
        self.hub = hub
        self.events = events

    async def deliver(self, notification: Notification) -> Delivery:
        script = notification.payload.get("script", "hans")
        text = to_script(notification.text, script)
        kind = message_log.notice_kind(notification.kind)
        choices = tuple(to_script(str(c), script) for c in notification.payload.get("choices") or ())
        reply = Reply(text, choices or (RATING_CHOICES if kind == "rating" else ()))
        if self.hub is not None:
            delivered = await self.hub.push(notification.recipient, (reply,), kind=kind, event=notification.kind)
        else:
            assert self.events is not None
            delivered = await self.events.publish(topic(notification.recipient),
                                                  push_frame((reply,), kind, notification.kind))
        return Delivery.SENT if delivered else Delivery.HELD


def user_id_for(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:40]


def choice_labels(text: str, choices: tuple[str, ...] | list[str], script: str = "hans") -> list[str]:
    """What each tap-choice chooses, for the button beside its number: a numbered choice takes
    its line in the reply ("2. 标准化", "回复“1”线上服务"), a rating choice its word (非常满意 …
    非常不满意), a choice that opens with its number its words ("5分 非常满意"); anything else
    is its own label."""
    rating = sorted(choices) == sorted(RATING_CHOICES)
    labels = []
    for choice in choices:
        label = ""
        numbered = re.match(r"^\d+\s*分?\s+(\S.*)$", choice)
        if numbered:
            label = numbered.group(1)
        elif rating:
            label = to_script(rating_scale().levels[int(choice)], script)  # the five national levels
        elif choice.isdigit():
            n = re.escape(choice)
            found = re.search(rf"^[ \t]*(?:[·•][ \t]*)?{n}[ \t]*[.．、)）:：][ \t]*(\S[^\n]*?)[ \t]*$", text, re.M) \
                or re.search(rf"[“\"「『]{n}[”\"」』][ \t]*([^\s，,。；;、“”\"「」『』或]+)", text)
            label = found.group(1) if found else ""
        if len(label) > _MAX_LABEL:
            label = label[: _MAX_LABEL - 1] + "…"
        labels.append(label or choice)
    return labels


def _reply_json(reply: Reply, script: str = "hans", kind: str = "bot") -> dict[str, Any]:
    return {"text": reply.text, "choices": list(reply.choices), "labels": choice_labels(reply.text, reply.choices,
                                                                                       script), "kind": kind}


def _result_json(
    result: TurnResult, in_reply_to: str | None, script: str = "hans", live_state: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "type": "replies",
        "in_reply_to": in_reply_to,
        "duplicate": result.duplicate,
        "replies": [_reply_json(r, script) for r in result.replies],
        "live": live_state,
    }


async def _live_json(session: Any, identity_id: int, now: Any, calendar: Any) -> dict[str, Any] | None:
    """The visitor's live handoff, for the page's "已接通 王专员" bar: who, which case, and
    whether that person is on duty now (else the message waits for working hours)."""
    current = await live.active_session(session, identity_id)
    if current is None:
        return None
    person = await session.get(Commissioner, current.commissioner_id) if current.commissioner_id else None
    case = await session.get(ServiceCase, current.case_id)
    return {
        "with": mask_name(person.name) if person is not None else "服务专员",
        "case": case.number if case is not None else None,
        "connected": bool(person is not None and person.on_duty and calendar.is_working_time(now)),
    }


def _history_kind(m: message_log.LoggedMessage) -> str:
    """How the page shows a logged message: user, bot, person, complaint, rating or status."""
    if m.direction == "in":
        return "user"
    if m.kind in ("person", "complaint", "rating", "status"):
        return m.kind
    if m.author and m.author.startswith("commissioner"):  # logged before notices had a kind
        return "person"
    return "status" if m.author == "system" else "bot"


def _client_ip(request: web.Request, trusted: tuple[Any, ...]) -> str | None:
    """The visitor's address for per-address limits (X-Forwarded-For only from trusted proxies)."""
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)


SESSION_IDS = web.AppKey("webchat_session_ids", SessionIds)


def _session_token(request: web.Request) -> str | None:
    """The visitor's session id if this server issued it; a client-chosen one counts as none
    and is replaced (no session fixation)."""
    return request.app[SESSION_IDS].verify(request.cookies.get(COOKIE))


def _cross_origin(request: web.Request, settings: Settings) -> web.Response | None:
    """403 for a browser request from a page of another origin (QIBOT_PUBLIC_URL's, or the
    request's own host when unset): another site must not act with the visitor's cookie."""
    origin = edge.foreign_origin(request, settings.public_url)
    if origin is None:
        return None
    log.warning("webchat: %s %s from origin %r refused", request.method, request.path, origin)
    return web.json_response({"error": "cross-origin request refused"}, status=403)


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


def setup(app: web.Application, deps_key: web.AppKey[ChannelDeps], settings: Settings) -> WebChatHub:
    """Mount the page and its API. Returns the hub of this process's open pages; it listens on
    the event bus once the app starts (:mod:`bot.channels.webchat_channel`)."""
    hub = WebChatHub()
    app[HUB] = hub
    trusted = parse_networks(settings.trusted_proxies)

    async def load_session_ids(app: web.Application) -> None:
        app[SESSION_IDS] = await SessionIds.load(app[deps_key].sessions)
        hub.start(app[deps_key])

    app.on_startup.append(load_session_ids)

    async def rotate(request: web.Request, user_id: str) -> tuple[str, str] | None:
        """A new session id (and its user id) for a visitor who just gave personal data; None
        when there is no conversation to move yet (see :mod:`bot.channels.websession`)."""
        token = request.app[SESSION_IDS].issue()
        moved = await move_identity(request.app[deps_key].sessions, CHANNEL, user_id, user_id_for(token))
        return (token, user_id_for(token)) if moved else None

    async def close_sockets(app: web.Application) -> None:
        await hub.drain(TURN_GRACE)

    app.on_shutdown.append(close_sockets)

    async def index(request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC_DIR / "index.html")
        if _session_token(request) is None:
            _set_cookie(response, request.app[SESSION_IDS].issue(), settings)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def post_message(request: web.Request) -> web.Response:
        if (refused := _cross_origin(request, settings)) is not None:
            return refused
        raw = await request.read()
        try:
            payload = edge.loads(raw)
            text, message_id = _parse_outgoing(payload)
        except UnicodeDecodeError:
            return web.json_response({"error": "request body is not valid UTF-8"}, status=400)
        except ValueError as exc:
            return web.json_response({"error": f"invalid message: {exc}"}, status=400)
        token = _session_token(request)
        new_token = token is None
        token = token or request.app[SESSION_IDS].issue()
        deps = request.app[deps_key]
        user_id = user_id_for(token)
        result = await deps.require_dialogue().handle(
            InboundMessage(channel=CHANNEL, user_id=user_id, text=text, message_id=message_id,
                           client_ip=_client_ip(request, trusted))
        )
        if not new_token and gives_personal_data(text) and (rotated := await rotate(request, user_id)):
            (token, user_id), new_token = rotated, True  # the response sets the new cookie
        script, live_state = await visitor_state(deps, user_id)
        response = web.json_response(_result_json(result, message_id, script, live_state))
        if new_token:
            _set_cookie(response, token, settings)
        return response

    async def upload(request: web.Request) -> web.Response:
        """An image or PDF for the visitor's open case: the raw bytes as the body (the file name,
        URL-encoded, in ``X-File-Name``), read up to :data:`UPLOAD_MAX` without the JSON limit.
        The type is sniffed from the bytes; the engine handles it as an image or file message
        (so limits, the open case and the answer are the chat's own), then the bytes are kept on
        the material it attached. Its id is the bytes' digest: a retry is the same message."""
        if (refused := _cross_origin(request, settings)) is not None:
            return refused
        token = _session_token(request)
        if token is None:
            return web.json_response({"error": "请先发送一条消息，再上传材料"}, status=400)
        if (request.content_length or 0) > UPLOAD_MAX:
            return web.json_response({"error": f"文件不能超过 {UPLOAD_MAX // (1024 * 1024)} MB"}, status=413)
        body = bytearray()
        while chunk := await request.content.read(64 * 1024):
            body += chunk
            if len(body) > UPLOAD_MAX:
                return web.json_response({"error": f"文件不能超过 {UPLOAD_MAX // (1024 * 1024)} MB"}, status=413)
        content_type = materials.sniff(bytes(body))
        if content_type not in UPLOAD_TYPES:
            return web.json_response({"error": "只能上传图片（JPG、PNG、GIF、WebP）或 PDF 文件"}, status=415)
        kind = "image" if content_type in materials.INLINE_TYPES else "file"
        digest = hashlib.sha256(body).hexdigest()[:40]
        ref = materials.WEBCHAT_PREFIX + digest
        try:
            filename: str | None = unquote(request.headers.get("X-File-Name", ""), errors="strict")[:200] or None
        except UnicodeDecodeError:
            filename = None
        deps = request.app[deps_key]
        user_id = user_id_for(token)
        result = await deps.require_dialogue().handle(InboundMessage(
            channel=CHANNEL, user_id=user_id, text="[图片]" if kind == "image" else "[文件]",
            message_id=f"upload:{digest}", kind=kind, attachment=ref, client_ip=_client_ip(request, trusted)))
        async with transaction(deps.sessions) as session:
            await materials.store_upload(session, channel=CHANNEL, user_id=user_id, ref=ref, content=bytes(body),
                                         filename=filename, now=deps.clock())
        script, live_state = await visitor_state(deps, user_id)
        return web.json_response(_result_json(result, None, script, live_state))

    async def visitor_state(deps: ChannelDeps, user_id: str) -> tuple[str, dict[str, Any] | None]:
        """The visitor's script (for button labels) and live handoff, after a turn."""
        async with transaction(deps.sessions) as session:
            identity = await identities.find(session, CHANNEL, user_id)
            if identity is None:
                return "hans", None
            return identity.script, await _live_json(session, identity.id, deps.clock(), deps.policy.calendar)

    page_settings = {
        "max_chars": settings.max_message_chars,
        "operator_name": settings.operator_name,
        "operator_contact": settings.operator_contact,
        "privacy_url": settings.privacy_url,
    }

    async def history(request: web.Request) -> web.Response:
        """The page's start: the welcome (never stored as a turn, so no message the visitor did
        not type), the settings the page shows, the transcript with each reply's kind and
        choices, and the live handoff if one is on."""
        token = _session_token(request)
        deps = request.app[deps_key]
        messages: list[message_log.LoggedMessage] = []
        script, language, live_state = "hans", "zh", None
        if token is not None:
            async with transaction(deps.sessions) as session:
                identity = await identities.find(session, CHANNEL, user_id_for(token))
                if identity is not None:
                    script, language = identity.script, identity.language
                    messages = await message_log.transcript(session, identity.id)
                    now = deps.clock()
                    live_state = await _live_json(session, identity.id, now, deps.policy.calendar)
                    # Held notices are in the transcript shown now: delivered, not handed over
                    # again with the answer to the next message.
                    await outbox.take_held(session, identity.id, now)
        texts = deps.require_dialogue().texts
        welcome = Reply(
            to_script(texts.render("welcome", language), script),
            tuple(to_script(c, script) for c in texts.render("menu_choices", language).split("|")),
        )
        items = []
        for m in messages:
            kind = _history_kind(m)
            choices = m.choices or (RATING_CHOICES if kind == "rating" else ())
            items.append({"direction": m.direction, "text": m.text, "at": m.created_at.isoformat(), "author": m.author,
                          "kind": kind, "choices": list(choices), "labels": choice_labels(m.text, choices, script)})
        return web.json_response(
            {"welcome": _reply_json(welcome, script), "settings": page_settings, "messages": items, "live": live_state}
        )

    async def rotate_session(request: web.Request) -> web.Response:
        """Exchange the ticket a WebSocket sent after a rotation for the new session cookie;
        only the holder of the old session id (the page that got the ticket) can."""
        if (refused := _cross_origin(request, settings)) is not None:
            return refused
        token = _session_token(request)
        try:
            payload = edge.loads(await request.read())
        except (UnicodeDecodeError, ValueError):
            return web.json_response({"error": "expected {\"ticket\": string}"}, status=400)
        ticket = payload.get("ticket") if isinstance(payload, dict) else None
        new_token = (request.app[SESSION_IDS].redeem(ticket, user_id_for(token))
                     if token is not None and isinstance(ticket, str) else None)
        if new_token is None:
            return web.json_response({"error": "invalid or expired session ticket"}, status=403)
        response = web.json_response({"ok": True})
        _set_cookie(response, new_token, settings)
        return response

    async def websocket(request: web.Request) -> web.StreamResponse:
        if (refused := _cross_origin(request, settings)) is not None:
            return refused
        token = _session_token(request)
        if token is None:
            return web.json_response({"error": "no chat session; open / first"}, status=401)
        user_id = user_id_for(token)
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=settings.max_body_bytes)
        await ws.prepare(request)
        edge.mark_upgraded(request, ws)
        deps = request.app[deps_key]
        limits, address = deps.limits, _client_ip(request, trusted)
        ticket = await limits.acquire_connection(CHANNEL, address, user_id) if limits is not None else None
        if isinstance(ticket, Refusal):  # too many sockets from this address or session: say so, close
            text = deps.require_dialogue().texts.render(ticket.text_key, **ticket.values)
            await ws.send_json({"type": "error", "error": text})
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many connections")
            return ws
        await hub.add(user_id, ws)
        await hub.catch_up(user_id)  # pushes held while no page of the visitor was reachable
        dialogue = deps.require_dialogue()
        try:
            async for frame in ws:
                if hub.closing:  # shutting down: the page sends it again to the next worker (same id)
                    break
                if frame.type != WSMsgType.TEXT:
                    if frame.type == WSMsgType.BINARY:
                        await ws.send_json({"type": "error", "error": "binary frames are not supported"})
                    continue
                try:
                    payload = edge.loads(frame.data)
                    if not isinstance(payload, dict) or payload.get("type") != "message":
                        kind = payload.get("type") if isinstance(payload, dict) else None
                        raise ValueError(f"unknown frame type {kind!r}")
                    text, message_id = _parse_outgoing(payload)
                except ValueError as exc:  # includes JSONDecodeError
                    await ws.send_json({"type": "error", "error": str(exc)})
                    continue
                async with hub.turn():  # a shutdown waits for it to answer
                    with metrics.turn_scope():  # each frame is a turn of its own (the request is the socket)
                        try:
                            result = await dialogue.handle(
                                InboundMessage(channel=CHANNEL, user_id=user_id, text=text, message_id=message_id,
                                               client_ip=address)
                            )
                            rotated = await rotate(request, user_id) if gives_personal_data(text) else None
                            if rotated is not None:  # this socket follows the visitor to the new id
                                await hub.discard(user_id, ws)
                                old_user_id, (new_token, user_id) = user_id, rotated
                                await hub.add(user_id, ws)
                            script, live_state = await visitor_state(deps, user_id)
                            await ws.send_json(_result_json(result, message_id, script, live_state))
                            if rotated is not None:
                                await ws.send_json({"type": "session", "ticket": request.app[SESSION_IDS].ticket(
                                    old_user_id, new_token)})
                        except Exception as exc:  # an error frame, never an HTTP 500 written into the upgraded stream
                            busy = is_unavailable(exc)
                            if busy:  # the database is down: one warning per outage, the page may send it again
                                OUTAGE.mark_down(exc)
                            else:
                                log.exception("webchat: turn failed on a WebSocket")
                            if ws.closed:
                                break
                            await ws.send_json({"type": "error", "in_reply_to": message_id, "busy": busy,
                                                "error": dialogue.texts.render("busy" if busy else "internal_error")})
        finally:
            await hub.discard(user_id, ws)
            if ticket is not None and limits is not None:
                await limits.release_connection(ticket)
        return ws

    app.router.add_get("/", index)
    app.router.add_post("/api/chat/messages", post_message)
    app.router.add_post("/api/chat/session", rotate_session)
    app.router.add_post("/api/chat/upload", upload)
    app.router.add_get("/api/chat/history", history)
    app.router.add_get("/api/chat/ws", websocket)
    app.router.add_static("/static/", STATIC_DIR, show_index=False)
    return hub
