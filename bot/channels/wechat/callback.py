"""A verified callback body → what the engine should hear: one :class:`Callback`.

The shared parser (xmltodict, which refuses entity declarations) reads the XML's fields; this
module decides the de-duplication key and the ``InboundMessage``:

* messages are keyed by ``MsgId``; events by ``CreateTime`` + event (+ ``EventKey``), since
  WeChat gives them no id (the identity, i.e. the openid, is part of the engine's key anyway);
* a menu click is handled as the text the user would have typed (``menu.yaml``);
* images, voice, video, files and locations keep their media id in the text as
  ``media_id=<id>`` (see :func:`media_id_of`), so case code can attach them as materials later;
* a voice message that carries WeChat's speech recognition (``Recognition``, when the account
  has 接收语音识别结果 on) is the recognised text: the user said it instead of typing it. Its
  media id stays on the message as its attachment.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.channels.wechat.crypto import CallbackRejected
from bot.channels.wechat.menu import Menu
from bot.channels.wxcrypto import parse_xml
from bot.messages import InboundMessage

CHANNEL = "wechat"
_MAX_ID = 128
_DIGITS = re.compile(r"[0-9]{1,20}")
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MEDIA_ID = re.compile(r"media_id=([A-Za-z0-9_\-.=+/]+)")
__all__ = ["CHANNEL", "Callback", "media_id_of", "parse_xml", "to_callback"]
_LABELS = {"image": "图片", "voice": "语音", "video": "视频", "shortvideo": "视频", "file": "文件"}


@dataclass(frozen=True, slots=True)
class Callback:
    openid: str  # FromUserName: the user
    account: str  # ToUserName: our account, the sender of a passive reply
    inbound: InboundMessage | None  # None: nothing to answer (unsubscribe, view, report events)
    subscribed: bool | None = None  # True on subscribe, False on unsubscribe: recorded on the identity

    @property
    def key(self) -> str:
        """In-flight and claim key of this callback."""
        return f"{self.openid}|{self.inbound.message_id if self.inbound else ''}"


def media_id_of(text: str) -> str | None:
    """The WeChat media id kept in the text of an image, voice, video or file message."""
    match = _MEDIA_ID.search(text)
    return match.group(1) if match else None


def to_callback(xml_text: str, menu: Menu) -> Callback:
    # The shared parser's checks (malformed, entities, no <xml>) and its fields, parsed once:
    # wechatpy's parse_message would parse the same text again with the same xmltodict, only to
    # wrap these fields in a message class whose type we read from MsgType ourselves.
    fields = parse_xml(xml_text)
    try:
        if not isinstance(fields["MsgType"], str):  # required as wechatpy requires it
            raise TypeError("MsgType is not text")
        return _map(fields, menu)
    except CallbackRejected:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CallbackRejected(400, f"unusable message ({type(exc).__name__}: {str(exc)[:80]})") from None


def _field(message: dict[str, Any], name: str) -> str:
    value = message.get(name)
    return value.strip() if isinstance(value, str) else ""


def _number(message: dict[str, Any], name: str, bound: int) -> int:
    """A numeric field (CreateTime, MsgId) as WeChat sends it: ASCII digits below ``bound``, else
    a 400 (a huge ``CreateTime`` used to overflow the date conversion into a 500); absent is 0."""
    value = _field(message, name)
    if not value:
        return 0
    if not _DIGITS.fullmatch(value) or int(value) >= bound:
        raise CallbackRejected(400, f"unusable message ({name} is not a number below {bound})")
    return int(value)


def _map(message: dict[str, Any], menu: Menu) -> Callback:
    openid = _field(message, "FromUserName")
    account = _field(message, "ToUserName")
    if not _OPENID.match(openid):
        raise CallbackRejected(400, "FromUserName missing or not an openid")
    create_time = _number(message, "CreateTime", 2**32)
    when = datetime.fromtimestamp(create_time, UTC) if create_time > 0 else None
    msg_type = _field(message, "MsgType").lower()

    def inbound(
        text: str, kind: str, message_id: str, event: str | None = None, attachment: str | None = None
    ) -> InboundMessage:
        message = InboundMessage(
            channel=CHANNEL, user_id=openid, text=text, message_id=message_id[:_MAX_ID], kind=kind, event=event,
            attachment=attachment,
        )
        return dataclasses.replace(message, timestamp=when) if when else message  # else: received now

    if msg_type == "event":
        event = _field(message, "Event").lower()
        event_key = _field(message, "EventKey")
        if event == "subscribe" and event_key.startswith(("scanbarcode|", "scanimage|", "qrscene_")):
            # A follow by scanning a code: named as wechatpy names it (part of the message id).
            event = "subscribe_scan" if event_key.startswith("qrscene_") else "subscribe_scan_product"
        event_id = f"ev:{create_time}:{event}"
        if event.startswith("subscribe"):
            return Callback(openid, account, inbound("", "event", event_id, "subscribe"), subscribed=True)
        if event == "unsubscribe":
            return Callback(openid, account, None, subscribed=False)
        if event == "click":
            text = menu.click_text(event_key)
            if text is None:
                return Callback(openid, account, None)
            return Callback(openid, account, inbound(text, "text", f"{event_id}:{event_key}", f"click:{event_key}"))
        return Callback(openid, account, None)  # VIEW, SCAN, LOCATION reports, job notices: nothing to say

    msg_id = str(_number(message, "MsgId", 2**64)) if _field(message, "MsgId") else ""
    message_id = msg_id if msg_id and msg_id != "0" else f"{msg_type}:{create_time}"
    if msg_type == "text":
        return Callback(openid, account, inbound(_field(message, "Content"), "text", message_id))
    if msg_type in _LABELS:
        kind = "video" if msg_type == "shortvideo" else msg_type
        media = _field(message, "MediaId") or _field(message, "FileKey")
        attachment = f"wechat-media:{media}" if media else None
        recognition = _field(message, "Recognition") if msg_type == "voice" else ""
        if recognition:  # speech-to-text, when enabled: handled as what the user said
            return Callback(openid, account, inbound(recognition, "text", message_id, attachment=attachment))
        text = f"[{_LABELS[msg_type]}] media_id={media}" if media else f"[{_LABELS[msg_type]}]"
        return Callback(openid, account, inbound(text, kind, message_id, attachment=attachment))
    if msg_type == "location":
        label = _field(message, "Label")
        text = f"[位置] {label} ({_field(message, 'Location_X')},{_field(message, 'Location_Y')})".replace("  ", " ")
        return Callback(openid, account, inbound(text, "location", message_id))
    if msg_type == "link":
        text = f"{_field(message, 'Title')} {_field(message, 'Url')}".strip()
        return Callback(openid, account, inbound(text, "text", message_id))
    return Callback(openid, account, None)
