"""Commands typed in the WeCom app: the staff actions (``bot/services/staff_actions.py``) as
Chinese verbs (``认领 QI-…``, ``回复 QI-… 文字``, ``备注``, ``转交 QI-… 账号 原因``, ``办结``,
``重新打开``, ``结束人工``, ``查看``, ``我的案件``, ``在岗``/``离岗``; the verbs are in ``texts.yaml``),
plus ``绑定 CODE`` and the help, answered with a passive reply. This module only parses a
message into the table's request and renders the result.

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
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.wecom.inbound import WeComMessage
from bot.messages import InboundMessage, Reply
from bot.services import desk, identities, linking, message_log, staff_actions
from bot.services.cases import CaseError
from bot.services.staff_actions import Request, Result
from bot.storage.db import transaction
from bot.texts import Texts

CHANNEL = "wecom"
_NUMBER = r"(QI-\d{4}-\d{6,})"


@cache
def texts() -> Texts:
    return Texts.load(Path(__file__).with_name("texts.yaml"))


def say(key: str, **values: Any) -> str:
    return texts().render(key, **values)


@cache
def verbs() -> dict[str, tuple[str, ...]]:
    """Staff action (or ``duty_on``, ``duty_off``, ``link``) → the words that mean it,
    from ``texts.yaml`` (the first one is shown in hints and usage lines)."""
    table: dict[str, tuple[str, ...]] = {}
    for line in say("verbs").splitlines():
        action, *words = line.split()
        table[action] = tuple(words)
    return table


@cache
def _with_case() -> re.Pattern[str]:
    on_case = [a for a, action in staff_actions.ACTIONS.items() if action.on_case]
    words = sorted((w for a in on_case for w in verbs()[a]), key=len, reverse=True)
    return re.compile(rf"^({'|'.join(map(re.escape, words))})\s*{_NUMBER}?\s*(.*)$", re.IGNORECASE | re.DOTALL)


def step(action: str, number: str) -> str:
    """A staff action as WeCom spells it (the next step a refusal suggests)."""
    return f"{verbs()[action][0]} {number}"


@dataclass(frozen=True, slots=True)
class Command:
    verb: str  # a staff action, or link | help
    request: Request = field(default_factory=Request)


def parse(text: str) -> Command:
    """The command in a message. What follows the case number is taken verbatim: it is the text
    an enterprise will read (so no NFKC there, which would turn "，" into ",")."""
    match = _with_case().match(text.strip())
    if match:
        action = next(a for a, ws in verbs().items() if match.group(1).lower() in ws)
        number = match.group(2).upper() if match.group(2) else None
        rest = match.group(3).strip()
        if action == "transfer":
            to, *reason = rest.split(maxsplit=1) or [""]  # any space, the ideographic one too
            return Command(action, Request(number=number, to=to or None, text=" ".join(reason).strip()))
        return Command(action, Request(number=number, text=rest))
    text = unicodedata.normalize("NFKC", text).strip()
    for word in verbs()["link"]:
        if text.startswith(word):
            return Command("link", Request(text=text[len(word):].strip()))
    if text in verbs()["mine"]:
        return Command("mine")
    if text in verbs()["duty_on"] or text in verbs()["duty_off"]:
        return Command("duty", Request(on=text in verbs()["duty_on"]))
    return Command("help")  # anything else: the command list


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
            return say("refused", reason=staff_actions.explain(exc, step)), False

    async def _dispatch(self, session: AsyncSession, user_id: str, command: Command,
                        now: datetime) -> tuple[str, bool]:
        if command.verb == "link":
            linked = await linking.link_wecom(session, command.request.text, user_id, now)
            return say("linked", name=linked.name, handle=linked.handle), False
        me = await linking.by_wecom(session, user_id)
        if me is None:
            return say("not_linked"), False
        if command.verb == "help":
            return say("help"), False
        if staff_actions.incomplete(command.verb, command.request):
            more = " ".join(a.label for a in staff_actions.ACTIONS[command.verb].args if a.name != "number")
            return say("usage", verb=verbs()[command.verb][0], more=more), False
        result = await staff_actions.run(session, me, command.verb, command.request, now)
        return self._render(result), result.notified

    def _render(self, result: Result) -> str:
        """The result in WeCom's words."""
        if result.action == "mine":
            if not result.cases:
                return say("no_cases")
            return say("my_cases", count=len(result.cases)) + "\n" + "\n".join(map(desk.case_line, result.cases))
        if result.action == "duty":
            return say("duty_set", on=result.on_duty)
        case = result.case
        assert case is not None
        if result.action == "show":
            return desk.case_card(case, tz=self.deps.tz, link=desk.console_link(self.deps.public_url, case.number))
        return say(_DONE[result.action], number=case.number, name=result.target.name if result.target else "")


# The confirmation text (texts.yaml) of each action that changes a case.
_DONE = {"accept": "accepted", "reply": "replied", "note": "noted", "transfer": "transferred",
         "resolve": "resolved", "reopen": "reopened", "end_live": "live_ended"}
