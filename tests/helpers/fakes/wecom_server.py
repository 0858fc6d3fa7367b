"""A local fake of the WeCom server API (aiohttp), speaking its JSON and error codes.

``GET /cgi-bin/gettoken`` (40001 on a wrong secret; the same token while it is valid, as WeCom
does), ``POST /cgi-bin/message/send`` (40014 for an unknown token, 42001 for an expired one,
81013 for an unknown user) and ``POST /cgi-bin/webhook/send`` (93000 for a wrong key, 45009
beyond ``robot_limit`` posts a minute). Switch: :meth:`FakeWeCom.expire_token` makes the
current token expire, so the next app message gets 42001.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeWeCom:
    corp_id: str
    secret: str
    robot_key: str = "robot-key-0001"
    members: frozenset[str] = frozenset({"wangming", "lihua"})
    robot_limit: int = 20
    messages: list[dict[str, Any]] = field(default_factory=list)  # app messages accepted
    robot_posts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)  # every errcode answered
    token_fetches: int = 0
    _token: str | None = None
    _expired: set[str] = field(default_factory=set)
    _robot_times: list[float] = field(default_factory=list)

    def expire_token(self) -> None:
        if self._token is not None:
            self._expired.add(self._token)
            self._token = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/message/send", self._message_send)
        app.router.add_post("/cgi-bin/webhook/send", self._webhook_send)
        return app

    def _answer(self, errcode: int, errmsg: str = "ok", **extra: Any) -> web.Response:
        if errcode:
            self.errors.append(errcode)
        return web.json_response({"errcode": errcode, "errmsg": errmsg, **extra})

    async def _gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("corpid") != self.corp_id or request.query.get("corpsecret") != self.secret:
            return self._answer(40001, "invalid credential")
        if self._token is None:
            self.token_fetches += 1
            self._token = f"token-{self.token_fetches}"
        return self._answer(0, access_token=self._token, expires_in=7200)

    async def _message_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        if token in self._expired:
            return self._answer(42001, "access_token expired")
        if token != self._token:
            return self._answer(40014, "invalid access_token")
        body = await request.json()
        if body.get("touser") not in self.members:
            return self._answer(81013, "user & party & tag all invalid", invaliduser=body.get("touser"))
        self.messages.append(body)
        return self._answer(0, invaliduser="", msgid=f"msg-{len(self.messages)}")

    async def _webhook_send(self, request: web.Request) -> web.Response:
        if request.query.get("key") != self.robot_key:
            return self._answer(93000, "invalid webhook url")
        now = time.monotonic()
        self._robot_times = [t for t in self._robot_times if t > now - 60]
        if len(self._robot_times) >= self.robot_limit:
            return self._answer(45009, "api freq out of limit")
        body = await request.json()
        content = body.get("text", {}).get("content", "")
        if len(content.encode()) > 2048:
            return self._answer(40058, "content exceed max length")
        self._robot_times.append(now)
        self.robot_posts.append(body)
        return self._answer(0)
