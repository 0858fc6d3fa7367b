"""Issue 14: one CDATA writer and one XML parser for WeChat and WeCom."""

from __future__ import annotations

import pytest
import xmltodict

from bot.channels import wxcrypto
from bot.channels.wechat import callback as wechat_callback
from bot.channels.wechat import render as wechat_render
from bot.channels.wecom import inbound as wecom_inbound
from bot.channels.wecom.inbound import WeComMessage, reply_xml

HOSTILE = ["plain", "a]]>b", "]]>]]>", "x]]", "<![CDATA[", "bell\x07 nul\x00 esc\x1b", "质量\n讲堂\t完", "\ufffe\uffff"]


def _member() -> WeComMessage:
    return WeComMessage(user_id="zhangsan", kind="text", text="hi", msg_id="1", event=None,
                        create_time=1, agent_id="1000002")


@pytest.mark.parametrize("text", HOSTILE)
def test_a_wecom_reply_is_well_formed_whatever_the_case_text(text: str) -> None:
    xml = reply_xml(_member(), f"案件描述：{text}", "ww1")
    content = xmltodict.parse(xml)["xml"]["Content"]
    expected = "".join(c for c in text if c in "\t\n\r" or not (c < " " or c in "\ufffe\uffff"))
    assert content == f"案件描述：{expected}"


@pytest.mark.parametrize("text", HOSTILE)
def test_the_sealed_envelope_nonce_is_well_formed(text: str) -> None:
    xml = f"<xml>{wxcrypto.cdata('n' + text)}</xml>"
    xmltodict.parse(xml)


def test_one_writer_and_one_parser_serve_both_channels() -> None:
    assert wechat_render.cdata is wxcrypto.cdata
    assert wecom_inbound.parse_xml is wxcrypto.parse_xml
    assert wechat_callback.parse_xml is wxcrypto.parse_xml


@pytest.mark.parametrize("body", ["<xml><a>1</a>", "<!DOCTYPE x [<!ENTITY e 'x'>]><xml><a>&e;</a></xml>", "<y/>"])
def test_the_shared_parser_refuses_bad_bodies_with_400(body: str) -> None:
    with pytest.raises(wxcrypto.CallbackRejected) as refused:
        wxcrypto.parse_xml(body)
    assert refused.value.status == 400
