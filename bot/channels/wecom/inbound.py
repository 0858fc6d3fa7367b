"""A WeCom callback body → one :class:`WeComMessage`, and a text back → passive-reply XML.

Parsing and CDATA writing are the ones shared with the Official Account
(:func:`bot.channels.wxcrypto.parse_xml`, :func:`bot.channels.wxcrypto.cdata`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from bot.channels.wecom.crypto import CallbackRejected
from bot.channels.wxcrypto import cdata, parse_xml

__all__ = ["WeComMessage", "parse_xml", "reply_xml", "to_message"]

_USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")  # WeCom UserIDs: letters, digits, _ - . @


@dataclass(frozen=True, slots=True)
class WeComMessage:
    user_id: str  # FromUserName: the member's UserID
    kind: str  # text | event | image | voice | ...
    text: str
    msg_id: str | None  # MsgId; events have none
    event: str | None
    create_time: int
    agent_id: str

    @property
    def key(self) -> str:
        """The de-duplication key: MsgId, or for an event its time and name."""
        return self.msg_id or f"ev:{self.create_time}:{self.event or self.kind}"


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    return value.strip() if isinstance(value, str) else ""


def to_message(fields: dict[str, Any], agent_id: str) -> WeComMessage:
    user_id = _text(fields, "FromUserName")
    if not _USER_ID.match(user_id):
        raise CallbackRejected(400, "FromUserName missing or not a UserID")
    their_agent = _text(fields, "AgentID")
    if their_agent and their_agent != agent_id:
        raise CallbackRejected(400, f"message for AgentID {their_agent[:12]}, not ours")
    created = _text(fields, "CreateTime")
    kind = _text(fields, "MsgType").lower() or "unknown"
    msg_id = _text(fields, "MsgId")
    return WeComMessage(
        user_id=user_id,
        kind=kind,
        text=_text(fields, "Content") if kind == "text" else "",
        msg_id=msg_id[:100] if msg_id.isascii() and msg_id.isdigit() else None,
        event=(_text(fields, "Event").lower() or None) if kind == "event" else None,
        create_time=int(created) if created.isascii() and created.isdigit() and len(created) <= 12 else 0,
        agent_id=their_agent or agent_id,
    )


def reply_xml(message: WeComMessage, text: str, corp_id: str) -> str:
    """A passive text reply to the member (encrypted by the caller)."""
    return (
        f"<xml><ToUserName>{cdata(message.user_id)}</ToUserName>"
        f"<FromUserName>{cdata(corp_id)}</FromUserName><CreateTime>{int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content>{cdata(text)}</Content></xml>"
    )
