"""An async client for the few WeChat HTTP APIs qibot uses: access token, customer-service
message, menu, and the download of a temporary media (an image an enterprise sent).
aiohttp instead of wechatpy's client, whose ``requests`` calls would block the
event loop. The access token comes from the shared :class:`TokenStore`; a token WeChat rejects
(40001/40014/42001) is replaced once and the call retried once.

Nothing here logs a URL: the token and the app secret travel in the query string.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.wechat.token import TokenStore
from bot.storage.types import utcnow

log = logging.getLogger(__name__)

TOKEN_REJECTED = frozenset({40001, 40014, 42001})  # invalid credential / invalid token / expired
OUT_OF_WINDOW = 45015  # customer-service message outside the 48 h window (also seen for the 5-message limit)
OVER_LIMIT = 45047  # over the customer-service message limit (5 per user message)
NOT_FOLLOWING = 43004  # the user has unfollowed
MEDIA_GONE = frozenset({40007})  # invalid media_id: never valid, or past WeChat's three days
_FILENAME = re.compile(r'filename="?([^";]+)"?')


class MediaTooLarge(Exception):
    """The media is larger than the caller's limit; it was not read to the end."""


class WeChatApiError(Exception):
    """WeChat answered with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str, path: str) -> None:
        super().__init__(f"{path}: errcode {errcode} ({errmsg[:120]})")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnreachable(Exception):
    """No usable answer: network error, timeout, HTTP 5xx or a body that is not JSON."""


class WeChatApi:
    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        sessions: async_sessionmaker[AsyncSession],
        *,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._secret = app_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None
        self.tokens = TokenStore(sessions, app_id, self._fetch_token, clock=clock)

    def __repr__(self) -> str:  # never show the secret
        return f"WeChatApi({self.base_url!r}, app_id={self.app_id!r})"

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _request(
        self, method: str, path: str, params: dict[str, str], payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"} if body is not None else None
        try:
            async with self._client().request(
                method, self.base_url + path, params=params, data=body, headers=headers
            ) as response:
                if response.status != 200:
                    raise WeChatUnreachable(f"{path}: HTTP {response.status}")
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WeChatUnreachable(f"{path}: {type(exc).__name__} {getattr(exc, 'message', '')}") from None
        if not isinstance(data, dict):
            raise WeChatUnreachable(f"{path}: answer is not a JSON object")
        errcode = int(data.get("errcode") or 0)
        if errcode:
            raise WeChatApiError(errcode, str(data.get("errmsg", "")), path)
        return data

    async def _fetch_token(self) -> tuple[str, int]:
        data = await self._request(
            "GET", "/cgi-bin/token", {"grant_type": "client_credential", "appid": self.app_id, "secret": self._secret}
        )
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeChatUnreachable("/cgi-bin/token: no access_token in the answer")
        return token, int(data.get("expires_in") or 7200)

    async def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with the shared token; a rejected token is replaced and the call retried once."""
        token = await self.tokens.get()
        try:
            return await self._request("POST", path, {"access_token": token}, payload)
        except WeChatApiError as exc:
            if exc.errcode not in TOKEN_REJECTED:
                raise
            log.warning("WeChat rejected the access token on %s (errcode %d); refreshing", path, exc.errcode)
        token = await self.tokens.invalidate(token)
        return await self._request("POST", path, {"access_token": token}, payload)

    async def download_media(self, media_id: str, limit: int) -> tuple[bytes, str | None]:
        """The bytes of a temporary media and the file name WeChat gives it (``GET
        /cgi-bin/media/get``); an error answers JSON instead of bytes. A rejected token is
        replaced once, as in :meth:`call`; more than ``limit`` bytes raises :class:`MediaTooLarge`."""
        token = await self.tokens.get()
        for attempt in (1, 2):
            try:
                async with self._client().get(self.base_url + "/cgi-bin/media/get",
                                              params={"access_token": token, "media_id": media_id}) as response:
                    if response.status != 200:
                        raise WeChatUnreachable(f"/cgi-bin/media/get: HTTP {response.status}")
                    if (response.content_type or "").endswith(("json", "text/plain")):
                        data = await response.json(content_type=None)
                        errcode = int(data.get("errcode") or 0) if isinstance(data, dict) else -1
                        if attempt == 1 and errcode in TOKEN_REJECTED:
                            token = await self.tokens.invalidate(token)
                            continue
                        raise WeChatApiError(errcode, str(data.get("errmsg", "") if isinstance(data, dict) else ""),
                                             "/cgi-bin/media/get")
                    if (response.content_length or 0) > limit:
                        raise MediaTooLarge(media_id)
                    body = bytearray()
                    async for chunk in response.content.iter_chunked(64 * 1024):
                        body += chunk
                        if len(body) > limit:
                            raise MediaTooLarge(media_id)
                    found = _FILENAME.search(response.headers.get("Content-Disposition", ""))
                    return bytes(body), found.group(1) if found else None
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise WeChatUnreachable(f"/cgi-bin/media/get: {type(exc).__name__}") from None
        raise WeChatUnreachable("/cgi-bin/media/get: the access token was rejected twice")

    async def send_text(self, openid: str, text: str) -> None:
        await self.call(
            "/cgi-bin/message/custom/send", {"touser": openid, "msgtype": "text", "text": {"content": text}}
        )

    async def send_menu(self, message: dict[str, Any]) -> None:
        """A customer-service menu message (``msgtype`` msgmenu; see ``render.menu_message``)."""
        await self.call("/cgi-bin/message/custom/send", message)

    async def create_menu(self, definition: dict[str, Any]) -> None:
        await self.call("/cgi-bin/menu/create", definition)
