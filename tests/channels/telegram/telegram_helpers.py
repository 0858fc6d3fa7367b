"""Playing Telegram's side in tests: updates as Telegram posts them to the webhook, and the
people and cases a commissioner works on."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from bot.runtime import Runtime
from bot.services import cases, identities
from bot.storage.db import transaction
from bot.storage.models import Commissioner, Enterprise
from tests.helpers.cases import commissioner as commissioner  # re-exported for the tests
from tests.helpers.cases import load_case as load_case
from tests.helpers.fakes.telegram_server import FakeTelegram

TOKEN = "123456789:AAtest-token_for-the-fake-server0"
SECRET = "webhook-secret_123"
PUBLIC_URL = "https://qi.example.cn"
COMPANY = "厦门星河精密机械有限公司"
MOBILE = "13812345678"
CREDIT_CODE = "91350200MA31X5Y27Q"
_update_ids = itertools.count(10_000)
_message_ids = itertools.count(1)


@dataclass
class TelegramUser:
    """One person in a private chat with the bot (chat id = user id, as in Telegram)."""

    client: TestClient
    fake: FakeTelegram
    chat_id: int
    name: str = "王明"
    chat_type: str = "private"

    def _user(self) -> dict[str, Any]:
        return {"id": self.chat_id, "is_bot": False, "first_name": self.name}

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        response = await self.client.post("/telegram/webhook", json=update, headers=headers)
        return response.status

    async def say(self, text: str, reply_to: dict[str, Any] | None = None) -> int:
        chat: dict[str, Any] = {"id": self.chat_id, "type": self.chat_type}
        chat.update({"first_name": self.name} if self.chat_type == "private" else {"title": self.name})
        message: dict[str, Any] = {
            "message_id": next(_message_ids), "date": int(time.time()), "text": text, "from": self._user(),
            "chat": chat,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return await self.post({"update_id": next(_update_ids), "message": message})

    async def press(self, data: str, message: dict[str, Any]) -> int:
        query = {"id": str(next(_update_ids)), "from": self._user(), "chat_instance": "ci-1", "data": data,
                 "message": message}
        return await self.post({"update_id": next(_update_ids), "callback_query": query})

    def inbox(self) -> list[str]:
        return [p["text"] for p in self.fake.sent("sendMessage", self.chat_id)]

    def last(self) -> dict[str, Any]:
        return self.fake.last_message(self.chat_id)


async def add_commissioner(runtime: Runtime, handle: str = "wang", name: str = "王明", *,
                           telegram_chat_id: int | None = None, domains: tuple[str, ...] = ("metrology",),
                           on_duty: bool = True) -> None:
    async with transaction(runtime.sessions) as session:
        session.add(Commissioner(handle=handle, name=name, domains=list(domains), on_duty=on_duty, active=True,
                                 telegram_chat_id=str(telegram_chat_id) if telegram_chat_id else None))


async def new_case(runtime: Runtime, external_id: str = "ent-1", channel: str = "cli") -> str:
    """A case opened by an enterprise (with a phone and a credit code on file) from ``channel``."""
    now = datetime.now(UTC)
    async with transaction(runtime.sessions) as session:
        enterprise = Enterprise(name=COMPANY, credit_code=CREDIT_CODE, mobile=MOBILE, contact_name="李四",
                                district="思明")
        session.add(enterprise)
        await session.flush()
        identity, _ = await identities.touch(session, channel, external_id, now)
        identity.enterprise_id = enterprise.id
        case = await cases.open_case(
            session, enterprise=enterprise, identity=identity, domain="metrology",
            description=f"加油机需要检定，联系电话 {MOBILE}，信用代码 {CREDIT_CODE}", mode="online",
            district="思明", now=now, public_url=runtime.settings.public_url,
        )
        return case.number
