"""The webhook route: the secret token decides, malformed bodies are a 4xx, and a qibot without
a Telegram token neither mounts the route nor talks to any Telegram server."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import load_settings
from bot.runtime import Runtime
from bot.services.knowledge import KnowledgeService
from intents.classifier import Nlu
from tests.channels.telegram.telegram_helpers import PUBLIC_URL, SECRET, TOKEN, TelegramUser
from tests.helpers.fakes.telegram_server import FakeTelegram


async def test_a_wrong_or_missing_secret_is_refused_with_403(wang: TelegramUser) -> None:
    update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"},
                                          "text": "/help"}}
    assert await wang.post(update, secret="not-the-secret") == 403
    assert await wang.post(update, secret=None) == 403
    assert await wang.post(update, secret=SECRET[:-1]) == 403
    assert await wang.post(update) == 200


async def test_malformed_updates_are_a_400_not_a_crash(client: TestClient) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"update_id": "x"}', b'{"message": {}}'):
        response = await client.post("/telegram/webhook", data=body, headers=headers)
        assert response.status == 400, body


async def test_start_up_registers_the_webhook_with_its_secret(client: TestClient, fake: FakeTelegram) -> None:
    assert [c.method for c in fake.calls][:2] == ["getMe", "setWebhook"]
    webhook = fake.sent("setWebhook")[0]
    assert webhook["url"] == f"{PUBLIC_URL}/telegram/webhook"
    assert webhook["secret_token"] == SECRET
    assert webhook["allowed_updates"] == ["message", "callback_query"]


async def test_a_resent_update_is_processed_once(wang: TelegramUser, fake: FakeTelegram) -> None:
    update = {"update_id": 77, "message": {"message_id": 5, "date": 0, "text": "/help",
                                           "chat": {"id": wang.chat_id, "type": "private"},
                                           "from": {"id": wang.chat_id, "is_bot": False, "first_name": "w"},
                                           "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}}
    assert await wang.post(update) == 200
    assert await wang.post(update) == 200
    assert len(wang.inbox()) == 1


async def test_without_a_token_there_is_no_route_and_no_telegram(aiohttp_client: Any, nlu: Nlu,
                                                                  knowledge: KnowledgeService, tmp_path: Any,
                                                                  fake: FakeTelegram) -> None:
    plain = load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path / "plain")})
    assert plain.telegram_token == "" and plain.telegram_api_base_url == "https://api.telegram.org"
    runtime = await Runtime.start(plain, nlu=nlu, knowledge=knowledge)  # the runtime builds the notifiers
    try:
        client = await aiohttp_client(create_app(plain, runtime))
        response = await client.post("/telegram/webhook", json={"update_id": 1})
        assert response.status in (404, 405)
        assert "telegram" not in runtime.dispatcher.notifiers
        assert fake.calls == []  # not even getMe
    finally:
        await runtime.close()


async def test_the_token_never_reaches_the_log(wang: TelegramUser, caplog: Any, runtime: Runtime) -> None:
    caplog.set_level("DEBUG")
    await wang.say("/mycases")
    await runtime.dispatcher.run_once()
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text
