"""Replies as WeChat text: several engine replies joined into one message, cut to WeChat's size
limit, and written into XML that no user text can break.

Joining rather than pushing the extra replies keeps the answer within the passive reply (no
customer-service quota used, nothing to go wrong later). Only text beyond the size limit is
pushed, as a follow-up message.

Tap-choices: a WeChat text message has no buttons, but the Official Account platform turns a
``<a href="weixin://bizmsgmenu?msgmenucontent=…&msgmenuid=…">`` link in a text message into a
tappable line; tapping it sends ``msgmenucontent`` as the user's text message (with a
``bizmsgmenuid`` field we do not need). A numbered line of the reply that lists a choice ("1. 计量")
becomes the link itself; other choices are added as "· choice" lines. Pushes use the
customer-service menu message (``msgmenu``, :func:`menu_message`) for the last reply's choices.
With tappable choices off (``QIBOT_WECHAT_TAPPABLE_CHOICES=false``) choices are plain "· 1" lines
to type from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.channels.wxcrypto import cdata
from bot.messages import Reply

# WeChat rejects text messages over 2048 bytes (errcode 45002); keep a margin.
MAX_TEXT_BYTES = 2000
MENU_SCHEME = "weixin://bizmsgmenu"
MENU_HEAD_BYTES = 1000  # a menu message's head_content: at most 1024 bytes
MENU_ITEMS = 10  # at most 10 lines in a menu message
MENU_ITEM_BYTES = 128
_LINK_UNSAFE = frozenset('%&#"\'<> ?=+\\')
_LINK_TEXT_UNSAFE = re.compile(r"[<>]")


def format_replies(replies: Iterable[Reply], *, tappable: bool = False) -> str:
    """One message: replies separated by a blank line; tap-choices become tappable links
    (``tappable``) or a list to type from."""
    parts: list[str] = []
    for reply in replies:
        text = with_choices(reply.text.strip(), reply.choices, tappable=tappable)
        if text:
            parts.append(text)
    return "\n\n".join(parts)


def push_parts(replies: Sequence[Reply], *, tappable: bool = False) -> tuple[str, tuple[str, ...]]:
    """A pushed answer: the text, and the last reply's choices to send as a menu message (empty
    when tappable choices are off: then they are plain lines in the text)."""
    if not tappable or not replies or not replies[-1].choices:
        return format_replies(replies, tappable=tappable), ()
    last = replies[-1]
    text = format_replies([*replies[:-1], Reply(last.text)], tappable=tappable)
    return text, last.choices


def with_choices(text: str, choices: Sequence[str], *, tappable: bool) -> str:
    if not choices:
        return text
    if not tappable:
        return text + "\n" + "\n".join(f"· {choice}" for choice in choices)
    lines = text.split("\n")
    extra: list[str] = []
    for index, choice in enumerate(choices, 1):
        at = _listed_at(lines, choice)
        if at is not None:
            lines[at] = menu_link(choice, lines[at].strip(), index)
        else:
            extra.append("· " + menu_link(choice, choice, index))
    return "\n".join([*lines, *extra])


def _listed_at(lines: list[str], choice: str) -> int | None:
    """The line of a numbered list that this choice ("2") picks ("2. 标准化"), if any."""
    if not choice.isdigit():
        return None
    pattern = re.compile(rf"^\s*{re.escape(choice)}\s*[.、．]\s*\S")
    for at, line in enumerate(lines):
        if pattern.match(line) and "<a " not in line:
            return at
    return None


def menu_link(content: str, label: str, menu_id: int) -> str:
    """A line the user taps to send ``content`` as a text message."""
    return (f'<a href="{MENU_SCHEME}?msgmenucontent={_link_quote(content)}&msgmenuid={menu_id}">'
            f"{_LINK_TEXT_UNSAFE.sub('', label)}</a>")


def _link_quote(value: str) -> str:
    """Percent-encode what would end or confuse the link (quotes, &, #, spaces, angle brackets);
    Chinese stays as it is, as the Official Account clients expect."""
    return "".join(f"%{ord(ch):02X}" if ch in _LINK_UNSAFE or ord(ch) < 0x20 else ch for ch in value)


def menu_message(openid: str, head: str, choices: Sequence[str], tail: str = "") -> dict[str, object]:
    """A customer-service menu message: ``head``, then one tappable line per choice (at most
    10); a tap arrives as a text message with the choice's content."""
    return {
        "touser": openid,
        "msgtype": "msgmenu",
        "msgmenu": {
            "head_content": head,
            "list": [{"id": str(i), "content": _fit_bytes(c, MENU_ITEM_BYTES)}
                     for i, c in enumerate(choices[:MENU_ITEMS], 1)],
            "tail_content": tail,
        },
    }


def _fit_bytes(text: str, limit: int) -> str:
    return text[: _fit(text, limit)] if len(text.encode()) > limit else text


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
        opened = rest.rfind("<a ", 0, cut)
        if opened > 0 and rest.find("</a>", opened, cut) < 0:  # never cut a tappable link in two
            cut = opened
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


def text_reply(to_user: str, from_account: str, content: str, create_time: int) -> str:
    """The passive text reply to one callback."""
    return (
        f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_account)}</FromUserName>"
        f"<CreateTime>{int(create_time)}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(content)}</Content></xml>"
    )
