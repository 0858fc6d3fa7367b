"""Commands typed in the WeCom app — ``认领 QI-…``, ``回复 QI-… 文字``, ``办结 QI-… 总结``,
``我的案件``, ``查看 QI-…``, ``在岗``/``离岗``, ``绑定 CODE`` — answered with a passive reply.

De-duplication is atomic and shared by every worker: the message is claimed in the message log
(unique on identity + MsgId, the same mechanism the dialogue engine uses) in the transaction
that runs the command. WeCom's retry of a slow request either waits on that unique key until
the first transaction commits or finds it taken, and answers with the reply stored for the
first delivery; a reply is never relayed to an enterprise twice. The log also keeps each
commissioner's commands, as the transcript keeps enterprises' messages.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.wecom.inbound import WeComMessage
from bot.messages import InboundMessage, Reply
from bot.services import cases, desk, identities, linking, message_log
from bot.services.cases import CaseError
from bot.storage.db import transaction
from bot.storage.models import Commissioner
from bot.texts import Texts

CHANNEL = "wecom"
_VERBS = {"认领": "accept", "受理": "accept", "回复": "reply", "办结": "resolve", "查看": "show"}
_WITH_CASE = re.compile(r"^(认领|受理|回复|办结|查看)\s*(QI-\d{4}-\d{6,})?\s*(.*)$", re.IGNORECASE | re.DOTALL)
_HELP = frozenset({"帮助", "help", "?", "？", "菜单"})


@cache
def texts() -> Texts:
    return Texts.load(Path(__file__).with_name("texts.yaml"))


def say(key: str, **values: Any) -> str:
    return texts().render(key, **values)


@dataclass(frozen=True, slots=True)
class Command:
    verb: str  # accept | reply | resolve | show | mine | duty_on | duty_off | link | help
    number: str | None = None
    text: str = ""


def parse(text: str) -> Command:
    """The command in a message. What follows the case number is taken verbatim: it is the text
    an enterprise will read (so no NFKC there, which would turn "，" into ",")."""
    match = _WITH_CASE.match(text.strip())
    if match:
        number = match.group(2).upper() if match.group(2) else None
        return Command(_VERBS[match.group(1)], number, match.group(3).strip())
    text = unicodedata.normalize("NFKC", text).strip()
    if text in ("我的案件", "我的待办", "待办"):
        return Command("mine")
    if text in ("在岗", "值班"):
        return Command("duty_on")
    if text in ("离岗", "下班"):
        return Command("duty_off")
    if text.startswith("绑定"):
        return Command("link", text=text[2:].strip())
    return Command("help")


@dataclass(frozen=True)
class Deps:
    sessions: async_sessionmaker[AsyncSession]
    wake: Callable[[], None]
    clock: Callable[[], datetime]
    tz: tzinfo
    public_url: str = ""


class WeComDesk:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def handle(self, message: WeComMessage) -> str | None:
        """The passive reply to one callback (None: nothing to say)."""
        if message.kind == "event":
            return say("help") if message.event == "subscribe" else None
        if message.kind != "text":
            return say("text_only")
        now = self.deps.clock()
        wrote = False
        async with transaction(self.deps.sessions) as session:
            identity, _ = await identities.touch(session, CHANNEL, message.user_id, now)
            inbound = InboundMessage(channel=CHANNEL, user_id=message.user_id, text=message.text[:4000],
                                     message_id=message.key, timestamp=now)
            inbound_id = await message_log.record_inbound(session, identity.id, inbound)
            if inbound_id is None:  # a retry: the first delivery's answer, nothing run again
                first = await message_log.existing_inbound_id(session, identity.id, message.key)
                replies = await message_log.replies_to(session, first) if first is not None else ()
                return "\n".join(r.text for r in replies) or None
            answer, wrote = await self._run(session, message.user_id, parse(message.text), now)
            await message_log.record_outbound(session, identity.id, (Reply(answer),), inbound_id, now)
        if wrote:
            self.deps.wake()
        return answer

    async def _run(self, session: AsyncSession, user_id: str, command: Command, now: datetime) -> tuple[str, bool]:
        """(answer, whether outbox rows were written). Each operation runs in a savepoint, so a
        refused one leaves nothing behind but the logged command and the reason."""
        try:
            async with session.begin_nested():
                return await self._dispatch(session, user_id, command, now)
        except CaseError as exc:
            return say("refused", reason=str(exc)), False

    async def _dispatch(self, session: AsyncSession, user_id: str, command: Command,
                        now: datetime) -> tuple[str, bool]:
        if command.verb == "link":
            linked = await linking.link_wecom(session, command.text, user_id, now)
            return say("linked", name=linked.name, handle=linked.handle), False
        me = await linking.by_wecom(session, user_id)
        if me is None:
            return say("not_linked"), False
        if command.verb == "help":
            return say("help"), False
        if command.verb == "mine":
            return await self._mine(session, me), False
        if command.verb in ("duty_on", "duty_off"):
            me.on_duty = command.verb == "duty_on"
            return say("duty_set", on=me.on_duty), False
        if command.number is None or (command.verb == "reply" and not command.text):
            verb = next(zh for zh, en in _VERBS.items() if en == command.verb)
            more = {"reply": "内容", "resolve": "总结"}.get(command.verb, "")
            return say("usage", verb=verb, more=more), False
        if command.verb == "show":
            case = await cases.require_case(session, command.number)
            link = desk.console_link(self.deps.public_url, case.number)
            return desk.case_card(case, tz=self.deps.tz, link=link), False
        await desk.act(session, me, cast(desk.Action, command.verb), command.number, command.text, now)
        key = {"accept": "accepted", "reply": "replied", "resolve": "resolved"}[command.verb]
        return say(key, number=command.number), True

    async def _mine(self, session: AsyncSession, me: Commissioner) -> str:
        rows = await desk.open_cases(session, me)
        if not rows:
            return say("no_cases")
        return say("my_cases", count=len(rows)) + "\n" + "\n".join(desk.case_line(c) for c in rows)
