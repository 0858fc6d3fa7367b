"""Greetings, the menu and goodbyes: the turns that need no lookup."""

from __future__ import annotations

from typing import ClassVar

from bot.services import cases, materials
from handlers.base import Match, Outcome, TurnContext


def _menu_choices(ctx: TurnContext) -> tuple[str, ...]:
    return tuple(ctx.texts.render("menu_choices").split("|"))


class WelcomeHandler:
    """A new follower or a first message gets the welcome and the menu in one reply."""

    name = "welcome"
    flows: frozenset[str] = frozenset()

    def matches(self, ctx: TurnContext) -> Match | None:
        if ctx.message.kind == "event" and ctx.message.event == "subscribe":
            return Match("subscribed")
        return None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        return Outcome((ctx.say("welcome", choices=_menu_choices(ctx)),))


class ActReplyHandler:
    """A fixed reply to one dialogue act: greetings get the welcome on first contact (then a
    short greeting), ``help`` gets the menu, goodbyes a goodbye."""

    flows: frozenset[str] = frozenset()

    def __init__(self, act: str, text_key: str, *, first_contact_key: str | None = None, menu: bool = False) -> None:
        self.name = act
        self.act = act
        self.text_key = text_key
        self.first_contact_key = first_contact_key
        self.menu = menu

    def matches(self, ctx: TurnContext) -> Match | None:
        return Match("act") if ctx.nlu.act == self.act else None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        key = self.first_contact_key if ctx.first_contact and self.first_contact_key else self.text_key
        choices = _menu_choices(ctx) if self.menu else ()
        return Outcome((ctx.say(key, choices=choices),))


class NonTextHandler:
    """Images, voice, files and locations: images and files are attached to the enterprise's
    open case as materials (with a line on its timeline); otherwise say politely what the bot
    can read."""

    name = "non_text"
    flows: frozenset[str] = frozenset()
    _KIND_NAMES: ClassVar[dict[str, str]] = {
        "image": "图片", "voice": "语音", "file": "文件", "location": "位置", "video": "视频",
    }
    _MATERIALS = frozenset({"image", "file"})

    def matches(self, ctx: TurnContext) -> Match | None:
        return Match(ctx.message.kind) if ctx.message.kind in self._KIND_NAMES else None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        kind_name = self._KIND_NAMES[match.reason]
        attachment = ctx.message.attachment
        if match.reason in self._MATERIALS and attachment and ctx.identity.enterprise_id is not None:
            open_cases = await cases.open_cases_of_enterprise(ctx.session, ctx.identity.enterprise_id)
            if open_cases:
                case = open_cases[0]
                cases.add_event(case, "attachment", "enterprise", ctx.now, kind_name, media=match.reason,
                                ref=attachment, channel=ctx.message.channel)
                # The bytes, for the console: WeChat media are fetched by the channel's notifier.
                await materials.record(ctx.session, case, kind=match.reason, ref=attachment,
                                       channel=ctx.message.channel, now=ctx.now)
                return Outcome((ctx.say("material_attached", kind_name=kind_name, number=case.number),))
        return Outcome((ctx.say("non_text", kind_name=kind_name),))


class FallbackHandler:
    """The last resort: honest about not understanding, pointing at the menu and a person."""

    name = "fallback"
    flows: frozenset[str] = frozenset()

    def matches(self, ctx: TurnContext) -> Match | None:
        return Match("fallback")

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        return Outcome((ctx.say("not_understood", choices=_menu_choices(ctx)),))
