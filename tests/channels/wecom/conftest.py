"""WeCom channel fixtures: a fake WeCom API, settings pointing at it with the published wechatpy
vector's token, EncodingAESKey and CorpID (overriding the root ``settings``, so the real
``runtime`` runs with the channel on), the app, and a member who types commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.config import Settings, load_settings
from bot.runtime import Runtime
from tests.channels.wecom.wecom_helpers import (
    AES_KEY,
    AGENT_ID,
    CORP_ID,
    PUBLIC_URL,
    ROBOT_KEY,
    SECRET,
    TOKEN,
    WeComMember,
)
from tests.helpers.fakes.wecom_server import FakeWeCom


@pytest.fixture
def fake() -> FakeWeCom:
    return FakeWeCom(corp_id=CORP_ID, secret=SECRET, robot_key=ROBOT_KEY)


@pytest.fixture
async def fake_server(aiohttp_server: Any, fake: FakeWeCom) -> TestServer:
    return await aiohttp_server(fake.app())


@pytest.fixture
def settings(tmp_path: Path, fake_server: TestServer) -> Settings:
    return load_settings(environ={
        "QIBOT_DATA_DIR": str(tmp_path / "data"),
        "QIBOT_PUBLIC_URL": PUBLIC_URL,
        "QIBOT_WECOM_CORP_ID": CORP_ID,
        "QIBOT_WECOM_AGENT_ID": AGENT_ID,
        "QIBOT_WECOM_SECRET": SECRET,
        "QIBOT_WECOM_TOKEN": TOKEN,
        "QIBOT_WECOM_AES_KEY": AES_KEY,
        "QIBOT_WECOM_ROBOT_KEY": ROBOT_KEY,
        "QIBOT_WECOM_API_BASE_URL": str(fake_server.make_url("")).rstrip("/"),
    })


@pytest.fixture
async def client(aiohttp_client: Any, runtime: Runtime) -> TestClient:
    return await aiohttp_client(create_app(runtime.settings, runtime))


@pytest.fixture
def member(client: TestClient) -> WeComMember:
    return WeComMember(client)
