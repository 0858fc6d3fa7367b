"""The WeCom server API over aiohttp: the corp access token, app messages, the group robot.

The token (``/cgi-bin/gettoken``) is cached in the process until shortly before it expires and
dropped when WeCom rejects it (40001, 40014, 42001), then fetched once more. Unlike the Official
Account's, a WeCom token is not invalidated by fetching another — WeCom returns the same one
while it is valid — so workers need not share it through the database.

Errors carry the error code and WeCom's message only: every URL here holds a secret (the
access token, the robot key), so no URL ever reaches an exception text or a log line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp

TOKEN_REJECTED = frozenset({40001, 40014, 42001})
RATE_LIMITED = frozenset({45009, 45033})
TEXT_BYTES = 2048  # app text messages and robot texts alike
_EARLY = 300.0  # seconds before expiry at which a cached token is renewed


class WeComError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeCom errcode {errcode}: {errmsg[:120]}")
        self.errcode = errcode


class WeComUnreachable(Exception):
    """No usable answer (network error, timeout, not JSON)."""


def clip_bytes(text: str, limit: int = TEXT_BYTES, mark: str = "…") -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes on a character boundary, marked if cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    room = limit - len(mark.encode())
    return data[:room].decode("utf-8", "ignore") + mark


class WeComApi:
    def __init__(
        self,
        base_url: str,
        corp_id: str,
        secret: str,
        agent_id: str,
        *,
        robot_key: str = "",
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self._secret = secret
        self.agent_id = int(agent_id)
        self._robot_key = robot_key
        self.clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.token_fetches = 0

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _call(self, method: str, path: str, params: dict[str, str], body: Any = None) -> dict[str, Any]:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._http.request(method, self.base_url + path, params=params, json=body) as response:
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WeComUnreachable(f"WeCom {path}: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise WeComUnreachable(f"WeCom {path}: answer is not a JSON object")
        return data

    async def token(self) -> str:
        if self._token and self.clock() < self._expires - _EARLY:
            return self._token
        async with self._lock:
            if self._token and self.clock() < self._expires - _EARLY:
                return self._token
            data = await self._call("GET", "/cgi-bin/gettoken", {"corpid": self.corp_id, "corpsecret": self._secret})
            if data.get("errcode", 0) != 0 or not data.get("access_token"):
                raise WeComError(int(data.get("errcode", -1)), str(data.get("errmsg", "no access_token")))
            self.token_fetches += 1
            self._token = str(data["access_token"])
            self._expires = self.clock() + float(data.get("expires_in", 7200))
            return self._token

    def _forget(self, rejected: str) -> None:
        if self._token == rejected:
            self._token = None

    async def send_text(self, user_id: str, content: str) -> None:
        """An app text message to one member. ``enable_duplicate_check`` makes a resend of the
        same text within 30 minutes (an outbox retry after a lost answer) a no-op at WeCom."""
        body = {
            "touser": user_id, "msgtype": "text", "agentid": self.agent_id, "text": {"content": clip_bytes(content)},
            "safe": 0, "enable_duplicate_check": 1, "duplicate_check_interval": 1800,
        }
        for attempt in (1, 2):
            token = await self.token()
            data = await self._call("POST", "/cgi-bin/message/send", {"access_token": token}, body)
            errcode = int(data.get("errcode", 0))
            if errcode in TOKEN_REJECTED and attempt == 1:
                self._forget(token)
                continue
            if errcode != 0:
                raise WeComError(errcode, str(data.get("errmsg", "")))
            if data.get("invaliduser"):
                raise WeComError(81013, "the UserID is not a member the app can reach")
            return

    async def robot_send(self, content: str) -> None:
        """A text to the team chat through its group robot (webhook)."""
        body = {"msgtype": "text", "text": {"content": clip_bytes(content)}}
        data = await self._call("POST", "/cgi-bin/webhook/send", {"key": self._robot_key}, body)
        errcode = int(data.get("errcode", 0))
        if errcode != 0:
            raise WeComError(errcode, str(data.get("errmsg", "")))
