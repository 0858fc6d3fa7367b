"""Helpers for the WeChat channel tests: a stand-in for WeChat's servers that signs and
encrypts callbacks with wechatpy's own crypto, and handlers to steer the engine."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import time
import uuid
from typing import Any

import xmltodict
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from wechatpy.crypto import WeChatCrypto

from bot.app import create_app
from bot.messages import Reply
from bot.runtime import Runtime
from handlers.base import Match, Outcome, TurnContext
from handlers.registry import HandlerRegistry
from tests.helpers.fakes.wechat_server import FakeWeChat

TOKEN = "qibotTestToken1"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 letters and digits
ACCOUNT = "gh_0123456789ab"


def wechat_environ(fake: FakeWeChat, api_url: str) -> dict[str, str]:
    """The settings that turn the WeChat channel on (safe mode unless changed) against the fake
    API server at ``api_url`` (never api.weixin.qq.com)."""
    return {"QIBOT_WECHAT_TOKEN": TOKEN, "QIBOT_WECHAT_APP_ID": fake.app_id,
            "QIBOT_WECHAT_APP_SECRET": fake.app_secret, "QIBOT_WECHAT_AES_KEY": AES_KEY,
            "QIBOT_WECHAT_API_BASE_URL": api_url.rstrip("/")}


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(openid: str, msg_type: str, fields: dict[str, str], *, create_time: int | None = None) -> str:
    body = "".join(f"<{k}>{v if v.isdigit() else cdata(v)}</{k}>" for k, v in fields.items())
    return (
        f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><FromUserName>{cdata(openid)}</FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType>{cdata(msg_type)}</MsgType>{body}</xml>"
    )


def signed(token: str, *parts: str) -> str:
    return hashlib.sha1("".join(sorted((token, *parts))).encode()).hexdigest()


class WeChatServers:
    """Plays WeChat: posts signed (and, in safe mode, wechatpy-encrypted) callbacks to
    ``/wechat`` and reads the replies back."""

    def __init__(self, client: TestClient, app_id: str, *, encrypted: bool = True) -> None:
        self.client = client
        self.app_id = app_id
        self.encrypted = encrypted
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, app_id)
        self._ids = iter(range(10**15, 10**16))

    def user(self) -> str:
        return "o" + uuid.uuid4().hex[:27]

    def next_id(self) -> str:
        return str(next(self._ids))

    async def post(
        self, inner: str, *, encrypted: bool | None = None, crypto: WeChatCrypto | None = None,
        timestamp: int | None = None,
    ) -> ClientResponse:
        encrypted = self.encrypted if encrypted is None else encrypted
        ts = str(timestamp or int(time.time()))
        nonce = uuid.uuid4().hex[:10]
        params = {"timestamp": ts, "nonce": nonce, "signature": signed(TOKEN, ts, nonce), "openid": "x"}
        body = inner
        if encrypted:
            envelope = xmltodict.parse((crypto or self.crypto).encrypt_message(inner, nonce, ts))["xml"]
            cipher = cdata(envelope["Encrypt"])
            body = f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><Encrypt>{cipher}</Encrypt></xml>"
            params |= {"encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
        return await self.client.post("/wechat", params=params, data=body.encode(),
                                      headers={"Content-Type": "text/xml"})

    def read(self, body: str) -> dict[str, Any] | None:
        """The reply's fields, decrypted (and signature-checked) with wechatpy; None for success."""
        if body == "success":
            return None
        doc = xmltodict.parse(body)["xml"]
        if "Encrypt" in doc:
            inner = self.crypto.decrypt_message(body, doc["MsgSignature"], doc["TimeStamp"], doc["Nonce"])
            doc = xmltodict.parse(inner)["xml"]
        return dict(doc)

    async def send(self, openid: str, msg_type: str, fields: dict[str, str], **kw: Any) -> dict[str, Any] | None:
        response = await self.post(message_xml(openid, msg_type, fields), **kw)
        assert response.status == 200, await response.text()
        return self.read(await response.text())

    async def say(self, openid: str, text: str, msg_id: str | None = None) -> str | None:
        reply = await self.send(openid, "text", {"Content": text, "MsgId": msg_id or self.next_id()})
        return None if reply is None else reply["Content"]

    async def click(self, openid: str, key: str) -> str | None:
        reply = await self.send(openid, "event", {"Event": "CLICK", "EventKey": key})
        return None if reply is None else reply["Content"]


async def client_for(aiohttp_client: Any, runtime: Runtime, **changes: Any) -> TestClient:
    """Another app instance (another "worker") on the same runtime, with changed settings."""
    return await aiohttp_client(create_app(dataclasses.replace(runtime.settings, **changes), runtime))


class EchoHandler:
    """Answers every text with itself, after ``delay`` seconds: a slow engine, or a reply whose
    text the test controls."""

    name = "test_echo"
    flows: tuple[str, ...] = ()

    def __init__(self, delay: float = 0.0, prefix: str = "echo: ") -> None:
        self.delay = delay
        self.prefix = prefix
        self.calls = 0

    def matches(self, ctx: TurnContext) -> Match | None:
        return Match("test") if ctx.message.kind == "text" else None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return Outcome((Reply(self.prefix + ctx.message.text),))


def put_first(runtime: Runtime, handler: Any) -> None:
    runtime.dialogue.registry = HandlerRegistry([handler, *runtime.dialogue.registry.handlers])


async def settle(runtime: Runtime, client: TestClient) -> None:
    """Wait until promised late pushes are in the outbox."""
    from bot.channels.wechat.inbound import CHANNEL_KEY

    await client.app[CHANNEL_KEY].drain()
