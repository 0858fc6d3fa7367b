"""Telegram channel fixtures: a fake Bot API server, settings pointing at it (overriding the root
``settings``, so the real ``runtime`` fixture runs with the channel on), the app with the PTB
Application started against the fake, and commissioner/enterprise helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.config import Settings, load_settings
from bot.runtime import Runtime
from tests.channels.telegram.telegram_helpers import PUBLIC_URL, SECRET, TOKEN, TelegramUser
from tests.helpers.clock import OffsetClock
from tests.helpers.fakes.telegram_server import FakeTelegram


@pytest.fixture
def fake() -> FakeTelegram:
    return FakeTelegram(TOKEN)


@pytest.fixture
async def fake_server(aiohttp_server: Any, fake: FakeTelegram) -> TestServer:
    return await aiohttp_server(fake.app())


@pytest.fixture
def extra_env() -> dict[str, str]:
    """Overridden by tests that need another Telegram setting."""
    return {}


@pytest.fixture
def settings(tmp_path: Path, fake_server: TestServer, extra_env: dict[str, str]) -> Settings:
    return load_settings(environ={
        "QIBOT_DATA_DIR": str(tmp_path / "data"),
        "QIBOT_PUBLIC_URL": PUBLIC_URL,
        "QIBOT_TELEGRAM_TOKEN": TOKEN,
        "QIBOT_TELEGRAM_SECRET_TOKEN": SECRET,
        "QIBOT_TELEGRAM_API_BASE_URL": str(fake_server.make_url("")).rstrip("/"),
        **extra_env,
    })


@pytest.fixture
def clock(runtime: Runtime) -> OffsetClock:
    clock = OffsetClock()
    runtime.dispatcher.clock = clock
    return clock


@pytest.fixture
async def client(aiohttp_client: Any, runtime: Runtime) -> TestClient:
    return await aiohttp_client(create_app(runtime.settings, runtime))


@pytest.fixture
def wang(client: TestClient, fake: FakeTelegram) -> TelegramUser:
    """The commissioner's Telegram account (linked or not, as the test arranges)."""
    return TelegramUser(client, fake, 4242, "王明")


@pytest.fixture
def stranger(client: TestClient, fake: FakeTelegram) -> TelegramUser:
    return TelegramUser(client, fake, 5151, "Mallory")
