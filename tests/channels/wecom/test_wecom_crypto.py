"""Our WeCom crypto against external truth: the published vectors of wechatpy's own test suite
(tests/test_crypto.py in wechatpy/wechatpy: token 123456, the EncodingAESKey and CorpID below)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import xmltodict
from aiohttp.test_utils import TestClient
from wecom_helpers import AES_KEY, CORP_ID, TOKEN

from bot.channels.wecom.crypto import CallbackRejected, WeComCrypto
from bot.channels.wecom.web import CHANNEL

# wechatpy tests/test_crypto.py, test_check_signature_should_ok / _should_fail
URL_SIGNATURE = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
URL_TIMESTAMP, URL_NONCE = "1411443780", "437374425"
ECHOSTR = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
# test_decrypt_message: Content "test" from "messense"
MESSAGE_SIGNATURE = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
MESSAGE_TIMESTAMP, MESSAGE_NONCE = "1411525903", "461056294"
MESSAGE_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGy"
    "mzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4"
    "hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQg"
    "WYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
# test_encrypt_message: random prefix pinned to "1234567890123456"
REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAt"
    "ObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmp"
    "B6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1v"
    "Wwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
REPLY_SIGNATURE = "407518b7649e86ef23978113f92d27afa9296533"


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
