"""WeChat answers in ``/metrics``: passive (in the callback's response) versus pushed (the turn
outlived the reply budget and went out through the customer-service API)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY

from bot.runtime import Runtime
from tests.channels.wechat.wechat_helpers import EchoHandler, WeChatServers, client_for, put_first, settle
from tests.helpers.fakes.wechat_server import FakeWeChat


def replies(mode: str) -> float:
    return REGISTRY.get_sample_value("qibot_wechat_replies_total", {"mode": mode}) or 0.0


async def test_passive_and_pushed_replies_are_counted_apart(
    wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat, aiohttp_client: Any
) -> None:
    passive, pushed = replies("passive"), replies("pushed")
    assert await wechat.say(wechat.user(), "你好")
    assert (replies("passive"), replies("pushed")) == (passive + 1, pushed)

    put_first(runtime, EchoHandler(delay=0.3))
    hurried: TestClient = await client_for(aiohttp_client, runtime, wechat_reply_budget=0.05)
    late = WeChatServers(hurried, fake.app_id)
    assert await late.say(late.user(), "检定证书") is None  # "success": the answer is pushed
    await settle(runtime, hurried)
    assert (replies("passive"), replies("pushed")) == (passive + 1, pushed + 1)
