"""Texts and inline keyboards the Telegram bot sends, and reading a case number back from a
message the commissioner replied to.

Callback data is ``<action>:<case number>`` (``accept:QI-2026-000001``), well within Telegram's
64 bytes. A notification carries its case number in its buttons, so a reply to it can be
routed without any state kept between the two messages.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.notify.base import Notification
from bot.services import desk
from bot.texts import Texts

MAX_TEXT = 4096  # Telegram's limit for one message
LABELS = {"accept": "认领", "resolve": "办结", "show": "查看"}
ACTIONS = frozenset(LABELS)
_ALL = ("accept", "resolve", "show")
# Which buttons each commissioner notification gets; kinds not listed get "show" only.
BUTTONS: dict[str, tuple[str, ...]] = {
    "case_assigned": _ALL,
    "case_transferred": _ALL,
    "case_escalated": _ALL,
    "live_requested": ("accept", "show"),
}
# Kinds a commissioner is likely to answer: the notification says that replying works.
REPLYABLE = frozenset({"case_assigned", "case_transferred", "case_escalated", "live_requested", "live_message"})
# Telegram command → staff action (bot/services/staff_actions.py); commands are [a-z0-9_].
COMMANDS = {
    "mycases": "mine", "case": "show", "duty": "duty", "accept": "accept", "reply": "reply", "note": "note",
    "transfer": "transfer", "resolve": "resolve", "reopen": "reopen", "endlive": "end_live",
}
COMMAND_OF = {action: command for command, action in COMMANDS.items()}
RESOLVE_PROMPT = re.compile(r"^【办结 (QI-\d{4}-\d{6,})】")


@cache
def texts() -> Texts:
    return Texts.load(Path(__file__).with_name("texts.yaml"))


def say(key: str, **values: Any) -> str:
    return texts().render(key, **values)


def step(action: str, number: str) -> str:
    """A staff action as Telegram spells it (the next step a refusal suggests)."""
    return f"/{COMMAND_OF.get(action, action)} {number}"


def clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def keyboard(number: str, actions: tuple[str, ...]) -> InlineKeyboardMarkup | None:
    if not actions:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(LABELS[a], callback_data=f"{a}:{number}") for a in actions]])


def buttons_for_status(status: str) -> tuple[str, ...]:
    return {"new": ("accept", "show"), "accepted": ("resolve", "show")}.get(status, ("show",))


def notification_text(notification: Notification, *, personal: bool, public_url: str) -> str:
    """The outbox text made fit for Telegram: personal data masked unless the deployment allows
    it, the console link and the hints of what to do (reply, end a live session) added."""
    text = desk.messenger_text(notification.text, personal=personal)
    number = notification.payload.get("case")
    link = desk.console_link(public_url, number) if isinstance(number, str) else ""
    if link and link not in text:
        text += f"\n查看：{link}"
    if notification.kind in REPLYABLE and number:
        text += "\n" + say("reply_hint")
    if notification.kind == "live_requested" and number:
        text += "\n" + say("live_hint", number=number)
    return clip(text)


def notification_keyboard(notification: Notification) -> InlineKeyboardMarkup | None:
    number = notification.payload.get("case")
    if not isinstance(number, str) or not number:
        return None
    return keyboard(number, BUTTONS.get(notification.kind, ("show",)))


def parse_callback(data: str | None) -> tuple[str, str] | None:
    """``accept:QI-…`` → (action, number); anything else (an old or forged button) → None."""
    action, _, number = (data or "").partition(":")
    found = desk.find_number(number)
    return (action, found) if action in ACTIONS and found and found == number.upper() else None


def case_of(message: Message) -> str | None:
    """The case a bot message is about: from its buttons, else from its text."""
    markup = message.reply_markup
    if markup is not None:
        for row in markup.inline_keyboard:
            for button in row:
                parsed = parse_callback(button.callback_data if isinstance(button.callback_data, str) else None)
                if parsed:
                    return parsed[1]
    return desk.find_number(message.text or "")
