"""A commissioner at one front end (the CLI, Telegram or WeCom), spelling each staff action the
way that front end takes it: the test's own knowledge of the syntax, not the code's tables."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field

import pytest
from aiohttp.test_utils import TestClient

from bot.cli import main
from bot.runtime import Runtime
from bot.storage.db import transaction
from bot.storage.models import Commissioner
from tests.channels.telegram import telegram_helpers as tg
from tests.channels.wecom import wecom_helpers as wc
from tests.helpers.fakes.telegram_server import FakeTelegram

FRONTS = ("cli", "telegram", "wecom")
MESSENGERS = ("telegram", "wecom")
# Each commissioner: name, Telegram chat id, WeCom UserID.
PEOPLE = {"wang": ("王明", 4242, "wangming"), "li": ("李华", 5151, "lihua")}
# How each front end spells each action: the test's own knowledge, not the code's tables.
CLI = {"end_live": "end-live"}
TELEGRAM = {"end_live": "endlive", "mine": "mycases", "show": "case"}
WECOM = {"accept": "认领", "reply": "回复", "note": "备注", "transfer": "转交", "resolve": "办结",
         "reopen": "重新打开", "end_live": "结束人工", "mine": "我的案件", "show": "查看"}



@dataclass
class Desk:
    """One front end, as the commissioners use it. ``do`` returns what the commissioner reads
    (for the CLI: standard output and error); every messenger answer is kept in ``read``."""

    front: str
    runtime: Runtime
    client: TestClient
    telegram: FakeTelegram
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    read: list[str] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)

    async def add_people(self) -> None:
        async with transaction(self.runtime.sessions) as session:
            for handle, (name, chat_id, user_id) in PEOPLE.items():
                session.add(Commissioner(handle=handle, name=name, domains=["metrology"], on_duty=True, active=True,
                                         telegram_chat_id=str(chat_id), wecom_user_id=user_id))

    async def do(self, who: str, action: str, number: str = "", text: str = "", *, to: str = "",
                 on: bool | None = None) -> str:
        if self.front == "cli":
            return await self._cli(self._cli_args(who, action, number, text, to, on))
        if self.front == "telegram":
            name, chat_id, _ = PEOPLE[who]
            words = ["on" if on else "off"] if action == "duty" else [number, to, text]
            command = " ".join(w for w in (f"/{TELEGRAM.get(action, action)}", *words) if w)
            user = tg.TelegramUser(self.client, self.telegram, chat_id, name)
            before = len(user.inbox())
            assert await user.say(command) == 200
            answers = user.inbox()[before:]
            self.read.extend(answers)
            return "\n".join(answers)
        _, _, user_id = PEOPLE[who]
        verb = ("在岗" if on else "离岗") if action == "duty" else WECOM[action]
        answer = await wc.WeComMember(self.client, user_id).say(" ".join(w for w in (verb, number, to, text) if w))
        self.read.append(answer or "")
        return answer or ""

    @staticmethod
    def _cli_args(who: str, action: str, number: str, text: str, to: str, on: bool | None) -> list[str]:
        if action == "duty":
            return ["commissioner", "duty", who, "on" if on else "off"]
        command = ["case", CLI.get(action, action)]
        if action == "mine":
            return [*command, "--as", who]
        if action == "show":
            return [*command, number]
        if action == "transfer":
            return [*command, number, "--to", to, "--reason", text, "--as", who]
        return [*command, number, *text.split(), "--as", who]

    async def _cli(self, args: list[str]) -> str:
        self.monkeypatch.setenv("QIBOT_DATA_DIR", str(self.runtime.settings.data_dir))
        self.capsys.readouterr()
        try:
            code = await asyncio.to_thread(main, args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        self.exit_codes.append(code)
        captured = self.capsys.readouterr()
        return captured.out + captured.err
