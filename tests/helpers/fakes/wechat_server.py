"""A local stand-in for api.weixin.qq.com: the access-token, customer-service message and menu
endpoints, speaking WeChat's JSON and error codes, recording every call.

Token rules follow WeChat's: a token lives ``expires_in`` seconds; fetching a new one keeps the
previous one valid for a grace period (5 minutes at WeChat; ``rotation_grace`` here, default
"until the next fetch"). Tests can expire tokens (→ 42001), revoke them (→ 40001) and queue
errors for the next calls (``fail``): an errcode, or an HTTP status 500-599.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "/cgi-bin/token"
CUSTOM_SEND = "/cgi-bin/message/custom/send"
MENU_CREATE = "/cgi-bin/menu/create"
MEDIA_GET = "/cgi-bin/media/get"
_ERRMSG = {
    40001: "invalid credential, access_token is invalid or not latest",
    40013: "invalid appid",
    40125: "invalid appsecret",
    42001: "access_token expired",
    43004: "require subscribe",
    45015: "response out of time limit or subscription is canceled",
    40200: "invalid account type",
    40007: "invalid media_id",
    47001: "data format error",
}


@dataclass
class Call:
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeWeChat:
    app_id: str = "wx0123456789abcdef"
    app_secret: str = "fake-secret-0123456789abcdef012345"
    token_delay: float = 0.0  # seconds the token endpoint takes: widens races in tests
    refuse_menus: bool = False  # answer menu messages with 40200, as WeChat does for test accounts
    calls: list[Call] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # accepted customer-service messages
    menus: list[dict[str, Any]] = field(default_factory=list)
    token_fetches: int = 0
    # Temporary media users sent: media id -> (bytes, file name WeChat gives it); others are 40007.
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    _valid: set[str] = field(default_factory=set)
    _expired: set[str] = field(default_factory=set)
    _failures: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))

    # --- what tests do -------------------------------------------------------------------

    def fail(self, path: str, *codes: int) -> None:
        """The next calls to ``path`` fail with these errcodes (or HTTP statuses if 5xx)."""
        self._failures[path].extend(codes)

    def expire_tokens(self) -> None:
        self._expired |= self._valid
        self._valid.clear()

    def revoke_tokens(self) -> None:
        self._valid.clear()

    def texts_to(self, openid: str) -> list[str]:
        return [m["text"]["content"] for m in self.sent if m["touser"] == openid and m["msgtype"] == "text"]

    def menus_to(self, openid: str) -> list[dict[str, Any]]:
        """The menu messages (``msgmenu``) sent to this user."""
        return [m["msgmenu"] for m in self.sent if m["touser"] == openid and m["msgtype"] == "msgmenu"]

    # --- the server ----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(TOKEN, self._token)
        app.router.add_post(CUSTOM_SEND, self._custom_send)
        app.router.add_post(MENU_CREATE, self._menu_create)
        app.router.add_get(MEDIA_GET, self._media_get)
        return app

    @staticmethod
    def _error(errcode: int) -> web.Response:
        return web.json_response({"errcode": errcode, "errmsg": _ERRMSG.get(errcode, "error")})

    def _forced(self, path: str) -> web.Response | None:
        queue = self._failures.get(path)
        if not queue:
            return None
        code = queue.popleft()
        if 500 <= code < 600:
            return web.Response(status=code, text="server error")
        return self._error(code)

    async def _token(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.calls.append(Call(TOKEN, {k: v for k, v in query.items() if k != "secret"}, None))
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if forced := self._forced(TOKEN):
            return forced
        if query.get("grant_type") != "client_credential" or query.get("appid") != self.app_id:
            return self._error(40013)
        if query.get("secret") != self.app_secret:
            return self._error(40125)
        self.token_fetches += 1
        token = f"ACCESS_TOKEN_{self.token_fetches}"
        self._valid = {token, *self._valid}
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def _authorised(self, request: web.Request, path: str) -> tuple[Any, web.Response | None]:
        raw = await request.read()
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        self.calls.append(Call(path, {"access_token": request.query.get("access_token", "")}, body))
        token = request.query.get("access_token", "")
        if token in self._expired:
            return body, self._error(42001)
        if token not in self._valid:
            return body, self._error(40001)
        if forced := self._forced(path):
            return body, forced
        if not isinstance(body, dict):
            return body, self._error(47001)
        return body, None

    async def _custom_send(self, request: web.Request) -> web.Response:
        body, error = await self._authorised(request, CUSTOM_SEND)
        if error is not None:
            return error
        if body.get("msgtype") == "msgmenu":
            if self.refuse_menus:
                return self._error(40200)
            if not body.get("touser") or not _valid_menu(body.get("msgmenu")):
                return self._error(47001)
            self.sent.append(body)
            return web.json_response({"errcode": 0, "errmsg": "ok"})
        text = body.get("text") if body.get("msgtype") == "text" else None
        if not body.get("touser") or not isinstance(text, dict) or not text.get("content"):
            return self._error(47001)
        self.sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _media_get(self, request: web.Request) -> web.StreamResponse:
        """The bytes with WeChat's headers (``Content-disposition: attachment; filename=...``), or
        JSON with an errcode, as WeChat answers an unknown or expired media id."""
        self.calls.append(Call(MEDIA_GET, dict(request.query), None))
        token = request.query.get("access_token", "")
        if token in self._expired:
            return self._error(42001)
        if token not in self._valid:
            return self._error(40001)
        if forced := self._forced(MEDIA_GET):
            return forced
        found = self.media.get(request.query.get("media_id", ""))
        if found is None:
            return self._error(40007)
        body, name = found
        return web.Response(body=body, content_type="image/jpeg",
                            headers={"Content-disposition": f'attachment; filename="{name}"'})

    async def _menu_create(self, request: web.Request) -> web.Response:
        body, error = await self._authorised(request, MENU_CREATE)
        if error is not None:
            return error
        if not isinstance(body.get("button"), list) or not 1 <= len(body["button"]) <= 3:
            return self._error(47001)
        self.menus.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


def _valid_menu(menu: Any) -> bool:
    """A menu message as WeChat documents it: head and tail texts, 1-10 items with an id and a
    content of at most 128 bytes, the head at most 1024 bytes."""
    if not isinstance(menu, dict) or not isinstance(menu.get("head_content"), str):
        return False
    if len(menu["head_content"].encode()) > 1024 or not isinstance(menu.get("tail_content", ""), str):
        return False
    items = menu.get("list")
    return isinstance(items, list) and 1 <= len(items) <= 10 and all(
        isinstance(i, dict) and str(i.get("id", "")) and isinstance(i.get("content"), str)
        and 0 < len(i["content"].encode()) <= 128 for i in items
    )
