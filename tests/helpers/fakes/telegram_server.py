"""A local fake of the Telegram Bot API (aiohttp), speaking its documented JSON envelope.

``POST/GET /bot<TOKEN>/<method>`` answers ``{"ok": true, "result": …}`` for ``getMe``,
``sendMessage``, ``editMessageText``, ``answerCallbackQuery``, ``setWebhook``, ``deleteWebhook``
and ``getUpdates``; errors come as ``{"ok": false, "error_code", "description"}`` with
``parameters.retry_after`` on 429, as python-telegram-bot expects. Every call is recorded.
Switches: :meth:`FakeTelegram.rate_limit` (next calls of a method get 429) and
:meth:`FakeTelegram.block` (sends to a chat get 403 "bot was blocked by the user").
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_ID = 7_000_001
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "qibot", "username": "qibot_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}
_JSON_PARAMS = {"reply_markup", "allowed_updates", "chat_id", "message_id", "show_alert", "offset", "limit",
                "timeout", "drop_pending_updates", "max_connections"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]


@dataclass
class FakeTelegram:
    token: str
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)  # served to getUpdates (polling)
    _limited: dict[str, list[int]] = field(default_factory=dict)
    _blocked: set[int] = field(default_factory=set)
    _next_id: int = 500

    # --- switches -------------------------------------------------------------------------

    def rate_limit(self, method: str = "sendMessage", retry_after: int = 3, times: int = 1) -> None:
        self._limited.setdefault(method, []).extend([retry_after] * times)

    def block(self, chat_id: int) -> None:
        self._blocked.add(chat_id)

    # --- reading what happened ----------------------------------------------------------------

    def sent(self, method: str = "sendMessage", chat_id: int | None = None) -> list[dict[str, Any]]:
        return [c.params for c in self.calls
                if c.method == method and (chat_id is None or c.params.get("chat_id") == chat_id)]

    def last_message(self, chat_id: int) -> dict[str, Any]:
        """The last message the bot sent to the chat, as Telegram would return it (for replying to)."""
        params = self.sent("sendMessage", chat_id)[-1]
        return params["_result"]

    # --- the server ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        call = Call(method, params)
        self.calls.append(call)
        if self._limited.get(method):
            retry_after = self._limited[method].pop(0)
            return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
        if "chat_id" in params and params["chat_id"] in self._blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        result = await handler(params)
        if isinstance(result, dict) and "message_id" in result:
            params["_result"] = result
        return web.json_response({"ok": True, "result": result})

    def _message(self, params: dict[str, Any], message_id: int | None = None) -> dict[str, Any]:
        if message_id is None:
            self._next_id += 1
            message_id = self._next_id
        message: dict[str, Any] = {
            "message_id": message_id, "date": int(time.time()), "from": BOT_USER,
            "chat": {"id": params["chat_id"], "type": "private"}, "text": params.get("text", ""),
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes inline keyboards only
        return message

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        return self._message(params)

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        return self._message(params, int(params["message_id"]))

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        pending = [u for u in self.updates if u["update_id"] >= offset]
        if not pending:
            await asyncio.sleep(0.05)  # a short long-poll, so a polling client does not spin
        return pending


async def _params(request: web.Request) -> dict[str, Any]:
    """PTB sends form fields whose non-string values are JSON-encoded; JSON bodies are accepted too."""
    if request.content_type == "application/json":
        body = await request.json()
        return dict(body) if isinstance(body, dict) else {}
    raw = dict(await request.post()) if request.can_read_body else dict(request.query)
    params: dict[str, Any] = {}
    for key, value in raw.items():
        text = str(value)
        if key in _JSON_PARAMS:
            try:
                params[key] = json.loads(text)
                continue
            except json.JSONDecodeError:
                pass
        params[key] = text
    return params


def _error(code: int, description: str, **parameters: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)
