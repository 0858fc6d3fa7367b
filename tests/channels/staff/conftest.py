"""The staff actions from every front end: the CLI, Telegram and WeCom against one runtime (both
messengers on, each with its local fake server), and a :class:`Desk` that spells an action the
way each front end takes it. Tests are parametrized over ``front``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.config import Settings, load_settings
from bot.runtime import Runtime
from tests.channels.staff.staff_desk import FRONTS, MESSENGERS, Desk
from tests.channels.telegram import telegram_helpers as tg
from tests.channels.wecom import wecom_helpers as wc
from tests.helpers.fakes.telegram_server import FakeTelegram
from tests.helpers.fakes.wecom_server import FakeWeCom


@pytest.fixture
def telegram_fake() -> FakeTelegram:
    return FakeTelegram(tg.TOKEN)


@pytest.fixture
def wecom_fake() -> FakeWeCom:
    return FakeWeCom(corp_id=wc.CORP_ID, secret=wc.SECRET, robot_key=wc.ROBOT_KEY)


def _base(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def servers(aiohttp_server: Any, telegram_fake: FakeTelegram, wecom_fake: FakeWeCom) -> tuple[str, str]:
    return _base(await aiohttp_server(telegram_fake.app())), _base(await aiohttp_server(wecom_fake.app()))


@pytest.fixture
def settings(tmp_path: Path, servers: tuple[str, str]) -> Settings:
    telegram, wecom = servers
    return load_settings(environ={
        "QIBOT_DATA_DIR": str(tmp_path / "data"),
        "QIBOT_PUBLIC_URL": tg.PUBLIC_URL,
        "QIBOT_TELEGRAM_TOKEN": tg.TOKEN,
        "QIBOT_TELEGRAM_SECRET_TOKEN": tg.SECRET,
        "QIBOT_TELEGRAM_API_BASE_URL": telegram,
        "QIBOT_WECOM_CORP_ID": wc.CORP_ID,
        "QIBOT_WECOM_AGENT_ID": wc.AGENT_ID,
        "QIBOT_WECOM_SECRET": wc.SECRET,
        "QIBOT_WECOM_TOKEN": wc.TOKEN,
        "QIBOT_WECOM_AES_KEY": wc.AES_KEY,
        "QIBOT_WECOM_API_BASE_URL": wecom,
    })


@pytest.fixture
async def client(aiohttp_client: Any, runtime: Runtime) -> TestClient:
    return await aiohttp_client(create_app(runtime.settings, runtime))


@pytest.fixture(params=FRONTS)
async def desk(request: pytest.FixtureRequest, runtime: Runtime, client: TestClient, telegram_fake: FakeTelegram,
               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Desk:
    desk = Desk(request.param, runtime, client, telegram_fake, capsys, monkeypatch)
    await desk.add_people()
    return desk


@pytest.fixture(params=MESSENGERS)
async def messenger(request: pytest.FixtureRequest, runtime: Runtime, client: TestClient,
                    telegram_fake: FakeTelegram, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> Desk:
    desk = Desk(request.param, runtime, client, telegram_fake, capsys, monkeypatch)
    await desk.add_people()
    return desk
