"""Callback bodies → InboundMessage, reply text → XML, and the menu file."""

from __future__ import annotations

import pytest
import xmltodict

from bot.channels.wechat.callback import media_id_of, to_callback
from bot.channels.wechat.crypto import CallbackRejected
from bot.channels.wechat.menu import default_menu
from bot.channels.wechat.render import MAX_TEXT_BYTES, cdata, format_replies, split_text, text_reply
from bot.messages import Reply
from tests.channels.wechat.wechat_helpers import message_xml

OPENID = "oUser0123456789abcdefghijk"


def parse(msg_type: str, **fields: str):  # type: ignore[no-untyped-def]
    return to_callback(message_xml(OPENID, msg_type, fields, create_time=1700000000), default_menu())


def test_a_text_message_is_keyed_by_its_msgid() -> None:
    callback = parse("text", Content="CCC认证怎么办？", MsgId="6054768590064713728")
    assert callback.openid == OPENID and callback.account == "gh_0123456789ab"
    inbound = callback.inbound
    assert inbound is not None
    assert (inbound.channel, inbound.user_id, inbound.kind) == ("wechat", OPENID, "text")
    assert inbound.text == "CCC认证怎么办？"
    assert inbound.message_id == "6054768590064713728"
    assert inbound.timestamp.timestamp() == 1700000000


def test_events_are_keyed_by_create_time_and_event() -> None:
    subscribe = parse("event", Event="subscribe")
    assert subscribe.inbound is not None and subscribe.subscribed is True
    assert (subscribe.inbound.kind, subscribe.inbound.event) == ("event", "subscribe")
    assert subscribe.inbound.message_id == "ev:1700000000:subscribe"
    by_qr = parse("event", Event="subscribe", EventKey="qrscene_42", Ticket="t")
    assert by_qr.inbound is not None and by_qr.inbound.event == "subscribe" and by_qr.subscribed is True
    unsubscribe = parse("event", Event="unsubscribe")
    assert unsubscribe.inbound is None and unsubscribe.subscribed is False
    assert parse("event", Event="VIEW", EventKey="https://example.org").inbound is None


@pytest.mark.parametrize(
    ("key", "text"),
    [("SERVICE_HALL", "菜单"), ("DEMAND_HALL", "我要办理"), ("PROGRESS", "我的需求进度"), ("CONTACT", "转人工"),
     ("QUALITY_LECTURE", "质量讲堂"), ("需求大厅", "我要办理"), ("进度查询", "我的需求进度")],
)
def test_menu_clicks_become_the_text_the_user_would_type(key: str, text: str) -> None:
    callback = parse("event", Event="CLICK", EventKey=key)
    assert callback.inbound is not None
    assert (callback.inbound.kind, callback.inbound.text, callback.inbound.event) == ("text", text, f"click:{key}")
    assert callback.inbound.message_id == f"ev:1700000000:click:{key}"


def test_an_unknown_click_is_ignored() -> None:
    assert parse("event", Event="CLICK", EventKey="NO_SUCH_KEY").inbound is None


def test_media_keep_their_media_id_for_case_materials() -> None:
    image = parse("image", PicUrl="http://mmbiz/x.jpg", MediaId="media_ABC-123", MsgId="11")
    assert image.inbound is not None and image.inbound.kind == "image"
    assert media_id_of(image.inbound.text) == "media_ABC-123"
    voice = parse("voice", MediaId="v1", Format="amr", MsgId="12")
    assert voice.inbound is not None and voice.inbound.kind == "voice" and media_id_of(voice.inbound.text) == "v1"
    video = parse("shortvideo", MediaId="sv1", ThumbMediaId="t", MsgId="13")
    assert video.inbound is not None and video.inbound.kind == "video"
    place = parse("location", Location_X="24.48", Location_Y="118.08", Scale="15", Label="厦门市思明区", MsgId="14")
    assert place.inbound is not None and place.inbound.kind == "location" and "厦门市思明区" in place.inbound.text


def test_a_recognised_voice_message_is_the_recognised_text() -> None:
    voice = parse("voice", MediaId="v1", Format="amr", Recognition="我要办理。", MsgId="16")
    assert voice.inbound is not None
    message = voice.inbound
    assert (message.kind, message.text, message.attachment) == ("text", "我要办理。", "wechat-media:v1")
    blank = parse("voice", MediaId="v2", Format="amr", Recognition="  ", MsgId="17")  # nothing recognised
    assert blank.inbound is not None and blank.inbound.kind == "voice"


def test_a_user_text_with_cdata_terminator_survives_parsing() -> None:
    callback = parse("text", Content="a]]>b <x/> &amp;", MsgId="15")
    assert callback.inbound is not None and callback.inbound.text == "a]]>b <x/> &amp;"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<xml><FromUserName>", "malformed"),
        ("not xml at all", "malformed"),
        ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><xml><MsgType>&e;</MsgType></xml>', "refused"),
        ("<xml>just text</xml>", "<xml>"),
        (f"<xml><FromUserName>{OPENID}</FromUserName></xml>", "MsgType"),
        (f"<xml><FromUserName>{OPENID}</FromUserName><MsgType>text</MsgType><MsgId>abc</MsgId></xml>", "unusable"),
        ("<xml><FromUserName>bad id!</FromUserName><MsgType>text</MsgType></xml>", "openid"),
    ],
)
def test_bad_bodies_are_rejected_with_400(body: str, reason: str) -> None:
    with pytest.raises(CallbackRejected) as refused:
        to_callback(body, default_menu())
    assert refused.value.status == 400 and reason in refused.value.reason


@pytest.mark.parametrize("text", ["plain", "a]]>b", "]]>]]>", "x]]", "<![CDATA[", "bell\x07 and nul\x00", "质量\n讲堂"])
def test_cdata_survives_any_text(text: str) -> None:
    xml = text_reply(OPENID, "gh_x", text, 1)
    content = xmltodict.parse(xml)["xml"]["Content"]
    assert content == text.replace("\x07", "").replace("\x00", "")
    assert cdata("a]]>b").count("<![CDATA[") == 2


def test_replies_are_joined_and_choices_listed() -> None:
    text = format_replies([Reply("第一条"), Reply("第二条", choices=("我要办理", "转人工"))])
    assert text == "第一条\n\n第二条\n· 我要办理\n· 转人工"


def test_long_text_is_split_at_paragraphs_within_the_byte_limit() -> None:
    paragraph = "计量检定" * 100  # 1200 bytes
    pieces = split_text("\n\n".join([paragraph] * 4))
    assert len(pieces) == 4 and all(len(p.encode()) <= MAX_TEXT_BYTES for p in pieces)
    assert pieces[0] == paragraph
    unbroken = "字" * 2000
    assert "".join(split_text(unbroken)) == unbroken
    assert split_text("短") == ["短"]


def test_the_menu_definition_is_what_the_api_expects() -> None:
    menu = default_menu()
    buttons = menu.definition["button"]
    assert [b["name"] for b in buttons] == ["服务大厅", "需求大厅", "质量讲堂"]
    assert all("text" not in b and "aliases" not in b for b in buttons[1]["sub_button"])
    keys = {b.get("key") for b in buttons} | {s["key"] for s in buttons[1]["sub_button"]}
    assert keys - {None} == {"SERVICE_HALL", "DEMAND_HALL", "PROGRESS", "CONTACT", "QUALITY_LECTURE"}
