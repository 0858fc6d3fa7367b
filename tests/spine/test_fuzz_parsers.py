"""Property-based fuzzing of everything that parses outside input (issue 13, point 5): each parser
either returns a value fit for the rest of the service or raises its own refusal (``ValueError``
or ``CallbackRejected``, i.e. a 4xx) — never anything else, which would surface as a 5xx.
"""

from __future__ import annotations

import contextlib
import json
import time

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.channels import edge
from bot.channels.webchat import _parse_outgoing
from bot.channels.wechat.callback import to_callback
from bot.channels.wechat.menu import default_menu
from bot.channels.wecom.inbound import parse_xml as wecom_parse_xml
from bot.channels.wecom.inbound import to_message
from bot.channels.wxcrypto import CallbackRejected, check_fresh
from bot.messages import UNSTORABLE, InboundMessage
from bot.privacy import redact

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", "9" * 400, "-0", "1e9", "NaN", "١٢٣", "²", "1_0", " 1 ", "0x10", "9" * 5000]),
    st.text(max_size=12),
)
field_text = st.one_of(st.text(max_size=40), st.sampled_from(["", "]]>", "<", "&amp;", "&#0;", "\x01", "a" * 3000]))


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@st.composite
def wechat_xml(draw: st.DrawFn) -> str:
    fields = {
        "ToUserName": draw(st.sampled_from(["gh_1", ""]) | field_text),
        "FromUserName": draw(st.sampled_from(["o" + "a" * 27, ""]) | field_text),
        "CreateTime": draw(numbers),
        "MsgType": draw(st.sampled_from(["text", "event", "image", "voice", "location", "link", "file", "x"])),
        "Content": draw(field_text),
        "MsgId": draw(numbers),
        "Event": draw(st.sampled_from(["subscribe", "unsubscribe", "CLICK", "VIEW", ""]) | field_text),
        "EventKey": draw(field_text),
        "MediaId": draw(field_text),
        "Recognition": draw(field_text),
        "Location_X": draw(numbers),
        "Label": draw(field_text),
        "Title": draw(field_text),
        "Url": draw(field_text),
    }
    keep = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=len(fields)))
    raw = draw(st.booleans())
    body = "".join(f"<{k}>{fields[k] if raw else _cdata(fields[k])}</{k}>" for k in keep)
    return f"<xml>{body}</xml>" if draw(st.integers(0, 9)) else draw(st.text(max_size=60))


@FUZZ
@given(st.one_of(st.text(max_size=300), json_values.map(json.dumps),
                 st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
                 st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n)))
def test_bounded_json_parses_or_refuses(text: str) -> None:
    try:
        value = edge.loads(text)
    except ValueError:
        return
    assert not UNSTORABLE.search(json.dumps(value, ensure_ascii=False))


@FUZZ
@given(st.binary(max_size=200))
def test_bounded_json_on_bytes(raw: bytes) -> None:
    with contextlib.suppress(ValueError):  # UnicodeDecodeError included
        edge.loads(raw)


@FUZZ
@given(json_values)
def test_web_chat_frames_parse_or_refuse(payload: object) -> None:
    try:
        text, message_id = _parse_outgoing(edge.loads(json.dumps(payload)))
    except ValueError:
        return
    assert isinstance(text, str) and (message_id is None or 0 < len(message_id) <= 128)


@FUZZ
@given(wechat_xml())
def test_wechat_callbacks_parse_or_refuse(xml: str) -> None:
    try:
        callback = to_callback(xml, default_menu())
    except CallbackRejected as exc:
        assert 400 <= exc.status < 500
        return
    if callback.inbound is not None:
        assert not UNSTORABLE.search(callback.inbound.text)
        assert callback.inbound.timestamp.year < 2200


@FUZZ
@given(wechat_xml(), st.sampled_from(["1000002", ""]))
@example("<xml><FromUserName>wang</FromUserName><CreateTime>²</CreateTime><MsgId>²</MsgId></xml>", "")
def test_wecom_callbacks_parse_or_refuse(xml: str, agent: str) -> None:
    try:
        message = to_message(wecom_parse_xml(xml.replace("gh_1", "ww1")), "1000002")
    except CallbackRejected as exc:
        assert 400 <= exc.status < 500
        return
    assert message.create_time >= 0


@FUZZ
@given(numbers)
def test_callback_timestamps_pass_or_refuse(timestamp: str) -> None:
    try:
        check_fresh(timestamp, 300, time.time)
    except CallbackRejected as exc:
        assert exc.status in (400, 403)


@FUZZ
@given(st.text(), st.text(max_size=20), st.one_of(st.none(), st.text(max_size=20)))
def test_every_inbound_message_is_storable(text: str, user: str, message_id: str | None) -> None:
    message = InboundMessage(channel="webchat", user_id=user, text=text, message_id=message_id)
    for value in (message.text, message.user_id, message.message_id or ""):
        value.encode("utf-8")  # no lone surrogate left
        assert "\x00" not in value


@FUZZ
@given(st.text(max_size=300))
def test_redaction_never_fails(text: str) -> None:
    assert isinstance(redact(text), str)
