"""Commissioner commands: the staff actions (``bot/services/staff_actions.py``) as ``/commands``
(``/accept``, ``/reply``, ``/note``, ``/transfer``, ``/resolve``, ``/reopen``, ``/endlive``,
``/duty``, ``/mycases``, ``/case``) and ``/help``. This module only parses a command into the
table's request and renders the result; who may do what is the table's business."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot.channels.telegram import render
from bot.channels.telegram.common import Answer, Deps, Work, as_commissioner, log, send
from bot.channels.telegram.render import COMMAND_OF, COMMANDS, say
from bot.services import desk, staff_actions
from bot.services.staff_actions import Request, Result
from bot.storage.models import Commissioner, ServiceCase

Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def usage(action: str) -> str:
    args = staff_actions.ACTIONS[action].args
    more = " ".join(a.label if a.required else f"[{a.label}]" for a in args if a.name != "number")
    return say("case_usage", command=COMMAND_OF[action], more=more)


def parse(action: str, words: list[str]) -> Request:
    """``/reply QI-… 文字``, ``/transfer QI-… li 原因``, ``/duty on``, ``/case qi-…`` → the request."""
    if action == "duty":
        return Request(on={"on": True, "off": False}.get((words or [""])[0].lower()))
    if action == "mine":
        return Request()
    if action == "show":
        return Request(number=desk.find_number(" ".join(words)))
    number = desk.find_number(words[0]) if words else None
    if action == "transfer":
        return Request(number=number, to=words[1] if len(words) > 1 else None, text=" ".join(words[2:]))
    return Request(number=number, text=" ".join(words[1:]))


class Commands:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def routes(self) -> list[tuple[str, Callback]]:
        """(command, callback) for every staff action, and /help."""
        return [("help", self.help), *((command, self.command(command)) for command in COMMANDS)]

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        async def work(session: AsyncSession, me: Commissioner) -> Answer:
            return Answer(say("help"))

        await send(context.bot, update, await as_commissioner(self.deps, update, work))

    def command(self, command: str) -> Callback:
        action = COMMANDS[command]

        async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            request = parse(action, list(context.args or []))
            if staff_actions.incomplete(action, request):
                await send(context.bot, update, Answer(usage(action), ok=False))
                return
            await send(context.bot, update, await as_commissioner(self.deps, update,
                                                                  operation(self.deps, action, request)))

        return callback


def operation(deps: Deps, action: str, request: Request) -> Work:
    """One staff action as a unit of work, answered with what happened."""

    async def work(session: AsyncSession, me: Commissioner) -> Answer:
        result = await staff_actions.run(session, me, action, request, deps.clock())
        if result.notified:
            log.info("telegram: commissioner %s %s %s", me.handle, action, request.number)
        return answer(deps, result, request)

    return work


def answer(deps: Deps, result: Result, request: Request) -> Answer:
    """The result in Telegram's words, with the buttons that fit what comes next."""
    case, action = result.case, result.action
    if action == "mine":
        if not result.cases:
            return Answer(say("no_cases"))
        text = say("my_cases", count=len(result.cases)) + "\n" + "\n".join(desk.case_line(c) for c in result.cases)
        buttons = [[InlineKeyboardButton(f"查看 {c.number}", callback_data=f"show:{c.number}")]
                   for c in result.cases[:10]]
        return Answer(render.clip(text), InlineKeyboardMarkup(buttons))
    if action == "duty":
        return Answer(say("duty_now" if request.on is None else "duty_set", on=result.on_duty))
    assert case is not None
    if action == "show":
        return card(deps, case)
    markup = render.keyboard(case.number, ("resolve", "show")) if action in ("accept", "reply", "reopen") else None
    return Answer(say(DONE[action], number=case.number, name=result.target.name if result.target else ""),
                  markup, wake=result.notified)


# The confirmation text (texts.yaml) of each action that changes a case.
DONE = {"accept": "accepted", "reply": "replied", "note": "noted", "transfer": "transferred",
        "resolve": "resolved", "reopen": "reopened", "end_live": "live_ended"}


def card(deps: Deps, case: ServiceCase) -> Answer:
    text = desk.case_card(case, tz=deps.tz, personal=deps.share_personal_data,
                          link=desk.console_link(deps.public_url, case.number))
    actions = tuple(a for a in render.buttons_for_status(case.status) if a != "show")
    return Answer(render.clip(text), render.keyboard(case.number, actions))
