"""WeChat channel fixtures: a fake WeChat API server, settings pointing at it (overriding the
root ``settings``, so the real ``runtime`` fixture runs with the channel on), the app, and a
``wechat`` helper that plays WeChat's servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.config import Settings, load_settings
from bot.runtime import Runtime
from tests.channels.wechat.wechat_helpers import WeChatServers, wechat_environ
from tests.helpers.fakes.wechat_server import FakeWeChat


@pytest.fixture
def fake() -> FakeWeChat:
    return FakeWeChat()


@pytest.fixture
async def fake_server(aiohttp_server: Any, fake: FakeWeChat) -> TestServer:
    return await aiohttp_server(fake.app())


@pytest.fixture
def settings(tmp_path: Path, fake_server: TestServer, fake: FakeWeChat) -> Settings:
    """Overrides the root ``settings``: the real ``runtime`` fixture then runs with the WeChat
    channel on, in safe mode, talking to the fake API server (never to api.weixin.qq.com)."""
    return load_settings(
        environ={
            "QIBOT_DATA_DIR": str(tmp_path / "data"),
            **wechat_environ(fake, str(fake_server.make_url(""))),
        }
    )


@pytest.fixture
async def app_client(aiohttp_client: Any, runtime: Runtime) -> TestClient:
    return await aiohttp_client(create_app(runtime.settings, runtime))


@pytest.fixture
def wechat(app_client: TestClient, fake: FakeWeChat) -> WeChatServers:
    return WeChatServers(app_client, fake.app_id)


