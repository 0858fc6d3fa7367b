"""Playing WeCom's side in tests: members' messages encrypted and signed by wechatpy's own
WeCom crypto (an implementation independent of ours), and replies decrypted by it."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import xmltodict
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.runtime import Runtime
from bot.services import cases, identities
from bot.storage.db import transaction
from bot.storage.models import Commissioner, Enterprise
from tests.helpers.cases import commissioner as commissioner  # re-exported for the tests
from tests.helpers.cases import load_case as load_case

# The published WeCom vector of wechatpy's tests/test_crypto.py (token, EncodingAESKey, CorpID).
TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "wx49f0ab532d5d035a"
AGENT_ID = "1"
SECRET = "corp-secret-for-tests-7f3a"
ROBOT_KEY = "robot-key-0001"
PUBLIC_URL = "https://qi.example.cn"
MOBILE = "13812345678"
_ids = itertools.count(6_000_000_000_000_000_001)


@dataclass
class WeComMember:
    client: TestClient
    user_id: str = "wangming"

    def __post_init__(self) -> None:
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)

    def inner(self, text: str, msg_id: int | None = None, msg_type: str = "text", agent: str = AGENT_ID) -> str:
        msg_id = next(_ids) if msg_id is None else msg_id
        return (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{self.user_id}]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{agent}</AgentID></xml>"
        )

    def envelope(self, inner: str, nonce: str = "1372623149") -> tuple[str, dict[str, str]]:
        """The POST body WeCom sends and its query string."""
        timestamp = str(int(time.time()))
        sealed = xmltodict.parse(self.crypto.encrypt_message(inner, nonce, timestamp))["xml"]
        body = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{sealed['Encrypt']}]]>"
                f"</Encrypt><AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>")
        return body, {"msg_signature": sealed["MsgSignature"], "timestamp": timestamp, "nonce": nonce}

    async def post(self, inner: str) -> ClientResponse:
        body, query = self.envelope(inner)
        return await self.client.post("/wecom/callback", params=query, data=body.encode())

    async def say(self, text: str, msg_id: int | None = None) -> str | None:
        """Send a text; the decrypted passive reply (None for an empty answer)."""
        response = await self.post(self.inner(text, msg_id))
        assert response.status == 200, await response.text()
        return self.open(await response.text())

    def open(self, body: str) -> str | None:
        if not body:
            return None
        envelope = xmltodict.parse(body)["xml"]
        inner = self.crypto.decrypt_message(body, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
        reply: dict[str, Any] = xmltodict.parse(inner)["xml"]
        assert reply["ToUserName"] == self.user_id and reply["FromUserName"] == CORP_ID
        return str(reply["Content"])


async def add_commissioner(runtime: Runtime, handle: str = "wang", name: str = "王明", *,
                           wecom_user_id: str | None = "wangming", domains: tuple[str, ...] = ("metrology",)) -> None:
    async with transaction(runtime.sessions) as session:
        session.add(Commissioner(handle=handle, name=name, domains=list(domains), on_duty=True, active=True,
                                 wecom_user_id=wecom_user_id))


async def new_case(runtime: Runtime, external_id: str = "ent-1") -> str:
    now = datetime.now(UTC)
    async with transaction(runtime.sessions) as session:
        enterprise = Enterprise(name="厦门星河精密机械有限公司", mobile=MOBILE, district="思明")
        session.add(enterprise)
        await session.flush()
        identity, _ = await identities.touch(session, "cli", external_id, now)
        identity.enterprise_id = enterprise.id
        case = await cases.open_case(
            session, enterprise=enterprise, identity=identity, domain="metrology",
            description=f"加油机需要检定，电话 {MOBILE}", mode="online", district="思明", now=now,
            public_url=runtime.settings.public_url,
        )
        return case.number
