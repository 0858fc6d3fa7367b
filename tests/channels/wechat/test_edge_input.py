"""Signed WeChat callbacks with hostile field values get a 4xx, never a 500 (issue 13, point 5):
before, a huge ``CreateTime`` overflowed the date conversion into an ``OverflowError``."""

from __future__ import annotations

import pytest

from tests.channels.wechat.wechat_helpers import ACCOUNT, WeChatServers, cdata


def _xml(openid: str, create_time: str, msg_id: str, content: str = "你好") -> str:
    return (f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><FromUserName>{cdata(openid)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType>{cdata('text')}</MsgType>"
            f"<Content>{cdata(content)}</Content><MsgId>{msg_id}</MsgId></xml>")


@pytest.mark.parametrize(
    ("create_time", "msg_id"),
    [
        ("9" * 40, "1"),                 # OverflowError in datetime.fromtimestamp before
        ("99999999999999", "1"),          # year 5138: ValueError/OSError before, depending on the platform
        ("-5", "1"),
        ("1765000000", "9" * 5000),       # int() refuses over 4300 digits
        ("1765000000", "1" + "0" * 20),   # beyond a 64-bit id
        ("1765000000", "١٢٣"),            # digits int() accepts but WeChat never sends
        ("1_765_000_000", "1"),
        ("NaN", "1"),
    ],
)
async def test_numeric_fields_out_of_range_are_refused(wechat: WeChatServers, create_time: str, msg_id: str) -> None:
    response = await wechat.post(_xml(wechat.user(), create_time, msg_id))
    assert response.status == 400, await response.text()


@pytest.mark.parametrize("content", ["&#0;", "&#xD800;", "\x01", "&#x1;"])
async def test_characters_xml_cannot_carry_are_refused(wechat: WeChatServers, content: str) -> None:
    body = (f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><FromUserName>{cdata(wechat.user())}</FromUserName>"
            f"<CreateTime>1765000000</CreateTime><MsgType>text</MsgType><Content>a{content}b</Content>"
            f"<MsgId>1</MsgId></xml>")
    response = await wechat.post(body)
    assert 400 <= response.status < 500
