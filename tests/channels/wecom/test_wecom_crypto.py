"""Our WeCom crypto against external truth: the published vectors of wechatpy's own test suite
(tests/test_crypto.py in wechatpy/wechatpy: token 123456, the EncodingAESKey and CorpID below)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import xmltodict
from aiohttp.test_utils import TestClient

from bot.channels.wecom.crypto import CallbackRejected, WeComCrypto
from bot.channels.wecom.web import CHANNEL
from tests.channels.wechatpy_vectors import (
    ECHOSTR,
    MESSAGE_ENCRYPT,
    MESSAGE_NONCE,
    MESSAGE_SIGNATURE,
    MESSAGE_TIMESTAMP,
    REPLY,
    REPLY_ENCRYPT,
    REPLY_SIGNATURE,
    URL_NONCE,
    URL_SIGNATURE,
    URL_TIMESTAMP,
)
from tests.channels.wecom.wecom_helpers import AES_KEY, CORP_ID, TOKEN


def at(timestamp: str, **kwargs: Any) -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID, clock=lambda: float(timestamp), **kwargs)


def test_the_published_message_decrypts() -> None:
    inner = at(MESSAGE_TIMESTAMP).decrypt(MESSAGE_ENCRYPT, MESSAGE_SIGNATURE, MESSAGE_TIMESTAMP, MESSAGE_NONCE)
    fields = xmltodict.parse(inner)["xml"]
    assert (fields["Content"], fields["FromUserName"]) == ("test", "messense")


def test_the_published_reply_encrypts_to_the_published_ciphertext() -> None:
    crypto = at(MESSAGE_TIMESTAMP, prefix=lambda: "1234567890123456")
    envelope = xmltodict.parse(crypto.encrypt(REPLY, MESSAGE_NONCE, MESSAGE_TIMESTAMP))["xml"]
    assert envelope["Encrypt"] == REPLY_ENCRYPT
    assert envelope["MsgSignature"] == REPLY_SIGNATURE


def test_the_published_url_check() -> None:
    plain = at(URL_TIMESTAMP).verify_url(URL_SIGNATURE, URL_TIMESTAMP, URL_NONCE, ECHOSTR)
    assert plain and plain.isdigit()  # WeCom's echostr is a random number string
    with pytest.raises(CallbackRejected) as refused:  # wechatpy's failing vector: another nonce
        at(URL_TIMESTAMP).verify_url(URL_SIGNATURE, URL_TIMESTAMP, "437374424", ECHOSTR)
    assert refused.value.status == 403


async def test_the_url_check_over_http(client: TestClient) -> None:
    channel = client.server.app[CHANNEL]
    channel.crypto.clock = lambda: float(URL_TIMESTAMP)
    query = {"msg_signature": URL_SIGNATURE, "timestamp": URL_TIMESTAMP, "nonce": URL_NONCE, "echostr": ECHOSTR}
    response = await client.get("/wecom/callback", params=query)
    assert response.status == 200
    assert await response.text() == at(URL_TIMESTAMP).verify_url(URL_SIGNATURE, URL_TIMESTAMP, URL_NONCE, ECHOSTR)
    response = await client.get("/wecom/callback", params={**query, "nonce": "437374424"})
    assert response.status == 403


def test_replays_wrong_keys_and_other_corps_are_refused() -> None:
    stale = WeComCrypto(TOKEN, AES_KEY, CORP_ID)  # today's clock: the 2014 vector is a replay
    with pytest.raises(CallbackRejected, match="window"):
        stale.decrypt(MESSAGE_ENCRYPT, MESSAGE_SIGNATURE, MESSAGE_TIMESTAMP, MESSAGE_NONCE)
    other_key = base64.b64encode(bytes(range(32))).decode().rstrip("=")
    wrong = WeComCrypto(TOKEN, other_key, CORP_ID, clock=lambda: float(MESSAGE_TIMESTAMP))
    with pytest.raises(CallbackRejected) as refused:
        wrong.decrypt(MESSAGE_ENCRYPT, MESSAGE_SIGNATURE, MESSAGE_TIMESTAMP, MESSAGE_NONCE)
    assert refused.value.status == 400
    other_corp = WeComCrypto(TOKEN, AES_KEY, "ww0000000000000000", clock=lambda: float(MESSAGE_TIMESTAMP))
    with pytest.raises(CallbackRejected, match="CorpID"):
        other_corp.decrypt(MESSAGE_ENCRYPT, MESSAGE_SIGNATURE, MESSAGE_TIMESTAMP, MESSAGE_NONCE)
