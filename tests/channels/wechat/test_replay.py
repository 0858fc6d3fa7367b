"""Replay protection (issue 13, point 3): in plaintext and compatible mode the signature covers
token, timestamp and nonce but not the body, so one signed URL could carry any message as any
openid. A second body under the same signature/nonce is refused with 409 and not processed;
the same body again (WeChat's own retry) is answered once, as before. Safe mode signs the
ciphertext too: it keeps no nonce and answers a resent callback once."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from typing import Any

import pytest
import xmltodict
from sqlalchemy import func, select

from bot.channels.wechat.inbound import plaintext_mode_warning
from bot.channels.wechat.settings import WeChatSettings
from bot.runtime import Runtime
from bot.storage.models import MessageLog
from tests.channels.wechat.wechat_helpers import ACCOUNT, TOKEN, WeChatServers, client_for, message_xml, signed


def _signed_params() -> dict[str, str]:
    ts, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    return {"timestamp": ts, "nonce": nonce, "signature": signed(TOKEN, ts, nonce), "openid": "x"}


async def _inbound_texts(runtime: Runtime) -> list[str]:
    async with runtime.sessions() as session:
        rows = await session.execute(select(MessageLog.text).where(MessageLog.direction == "in"))
        return [r[0] for r in rows]


@pytest.mark.parametrize("mode", ["plain", "compatible"])
async def test_a_signed_url_cannot_carry_a_second_body(aiohttp_client: Any, runtime: Runtime, fake: Any,
                                                       mode: str) -> None:
    client = await client_for(aiohttp_client, runtime, wechat_mode=mode,
                              **({"wechat_aes_key": ""} if mode == "plain" else {}))
    wechat = WeChatServers(client, fake.app_id, encrypted=False)
    victim, intruder = wechat.user(), wechat.user()
    params = _signed_params()
    first = message_xml(victim, "text", {"Content": "你好", "MsgId": wechat.next_id()})
    response = await client.post("/wechat", params=params, data=first.encode())
    assert response.status == 200

    forged = message_xml(intruder, "text", {"Content": "我要投诉", "MsgId": wechat.next_id()})
    replayed = await client.post("/wechat", params=params, data=forged.encode())
    assert replayed.status == 409
    assert "我要投诉" not in await _inbound_texts(runtime)  # refused before anything ran

    retried = await client.post("/wechat", params=params, data=first.encode())  # WeChat's own retry
    assert retried.status == 200
    assert (await _inbound_texts(runtime)).count("你好") == 1


async def test_compatible_mode_a_plaintext_body_cannot_ride_on_an_encrypted_callbacks_url(
    aiohttp_client: Any, runtime: Runtime, fake: Any
) -> None:
    """The URL of an encrypted callback also carries the plaintext ``signature``: posted again
    without ``encrypt_type`` and with a forged plaintext body, it must be refused, not run."""
    client = await client_for(aiohttp_client, runtime, wechat_mode="compatible")
    wechat = WeChatServers(client, fake.app_id, encrypted=True)
    ts, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    inner = message_xml(wechat.user(), "text", {"Content": "你好", "MsgId": wechat.next_id()})
    envelope = xmltodict.parse(wechat.crypto.encrypt_message(inner, nonce, ts))["xml"]
    params = {"timestamp": ts, "nonce": nonce, "signature": signed(TOKEN, ts, nonce), "openid": "x"}
    cipher = f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt>"
    body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>{cipher}</xml>"
    first = await client.post("/wechat", params={**params, "encrypt_type": "aes",
                                                 "msg_signature": envelope["MsgSignature"]}, data=body.encode())
    assert first.status == 200

    forged = message_xml(wechat.user(), "text", {"Content": "我要投诉", "MsgId": wechat.next_id()})
    replayed = await client.post("/wechat", params=params, data=forged.encode())
    assert replayed.status == 409
    assert "我要投诉" not in await _inbound_texts(runtime)


async def test_a_fresh_nonce_is_accepted(aiohttp_client: Any, runtime: Runtime, fake: Any) -> None:
    client = await client_for(aiohttp_client, runtime, wechat_mode="compatible")
    wechat = WeChatServers(client, fake.app_id, encrypted=False)
    openid = wechat.user()
    for text in ("你好", "谢谢"):
        body = message_xml(openid, "text", {"Content": text, "MsgId": wechat.next_id()})
        response = await client.post("/wechat", params=_signed_params(), data=body.encode())
        assert response.status == 200


async def test_safe_mode_answers_a_resent_callback_once_without_a_nonce_row(
    wechat: WeChatServers, runtime: Runtime
) -> None:
    """Safe mode signs the ciphertext, the only part of the body that is read: a request under
    a signed URL seen before carries the same message, whatever the envelope around it says. It
    is answered with the first answer and not run again; no nonce is stored for it."""
    openid = wechat.user()
    ts, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    inner = message_xml(openid, "text", {"Content": "你好", "MsgId": wechat.next_id()})
    envelope = xmltodict.parse(wechat.crypto.encrypt_message(inner, nonce, ts))["xml"]
    params = {"timestamp": ts, "nonce": nonce, "signature": signed(TOKEN, ts, nonce), "openid": "x",
              "encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
    encrypt = f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt>"
    bodies = [f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>{encrypt}</xml>"] * 2
    bodies.append(f"<xml><ToUserName><![CDATA[gh_someone_else]]></ToUserName>{encrypt}</xml>")  # envelope altered
    answers = []
    for body in bodies:
        response = await wechat.client.post("/wechat", params=params, data=body.encode())
        assert response.status == 200
        reply = wechat.read(await response.text())
        assert reply is not None
        answers.append(reply["Content"])
    assert answers[0] and answers == [answers[0]] * 3
    assert (await _inbound_texts(runtime)).count("你好") == 1
    async with runtime.sessions() as session:
        from bot.storage.guards import SeenNonce

        assert await session.scalar(select(func.count()).select_from(SeenNonce)) == 0


@pytest.mark.parametrize(
    ("mode", "aes", "public_url", "warned"),
    [
        ("plain", "", "https://qi.example.cn", True),
        ("compatible", "x" * 43, "https://qi.example.cn", True),
        ("safe", "x" * 43, "https://qi.example.cn", False),
        ("plain", "", "http://127.0.0.1:8080", False),
        ("plain", "", "", False),
    ],
)
def test_start_warns_about_plaintext_modes_in_production(runtime: Runtime, mode: str, aes: str, public_url: str,
                                                         warned: bool) -> None:
    settings = dataclasses.replace(runtime.settings, wechat_mode=mode, wechat_aes_key=aes, public_url=public_url)
    warning = plaintext_mode_warning(WeChatSettings.parse(settings), settings.public_url)
    assert bool(warning) is warned
    if warning:
        assert "safe" in warning and mode in warning


async def test_the_warning_is_logged_at_start(aiohttp_client: Any, runtime: Runtime,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.channels.wechat.inbound"):
        await client_for(aiohttp_client, runtime, wechat_mode="compatible", public_url="https://qi.example.cn")
    assert any("QIBOT_WECHAT_MODE=compatible" in r.getMessage() for r in caplog.records)
