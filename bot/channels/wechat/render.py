"""Replies as WeChat text: several engine replies joined into one message, cut to WeChat's size
limit, and written into XML that no user text can break.

Joining rather than pushing the extra replies keeps the answer within the passive reply (no
customer-service quota used, nothing to go wrong later). Only text beyond the size limit is
pushed, as a follow-up message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.messages import Reply

# WeChat rejects text messages over 2048 bytes (errcode 45002); keep a margin.
MAX_TEXT_BYTES = 2000
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def format_replies(replies: Iterable[Reply]) -> str:
    """One message: replies separated by a blank line; tap-choices become a list to type from,
    since a WeChat text message has no buttons."""
    parts: list[str] = []
    for reply in replies:
        text = reply.text.strip()
        if reply.choices:
            text += "\n" + "\n".join(f"· {choice}" for choice in reply.choices)
        if text:
            parts.append(text)
    return "\n\n".join(parts)


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Pieces of at most ``limit`` UTF-8 bytes, cut at paragraph or line breaks where possible."""
    pieces: list[str] = []
    rest = text
    while len(rest.encode()) > limit:
        cut = _fit(rest, limit)
        for sep in ("\n\n", "\n", "。", " "):
            at = rest.rfind(sep, 0, cut)
            if at > cut // 2:
                cut = at + len(sep)
                break
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n")
    if rest.strip() or not pieces:
        pieces.append(rest)
    return pieces


def _fit(text: str, limit: int) -> int:
    """The longest prefix length (in characters) that fits ``limit`` bytes."""
    size = 0
    for index, char in enumerate(text):
        size += len(char.encode())
        if size > limit:
            return max(index, 1)
    return len(text)


def cdata(value: str) -> str:
    """A CDATA section that survives any text: ``]]>`` is split across two sections and
    characters XML 1.0 forbids are dropped (wechatpy renders CDATA without either)."""
    clean = _NOT_XML_CHAR.sub("", value)
    return "<![CDATA[" + clean.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_account: str, content: str, create_time: int) -> str:
    """The passive text reply to one callback."""
    return (
        f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_account)}</FromUserName>"
        f"<CreateTime>{int(create_time)}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(content)}</Content></xml>"
    )
