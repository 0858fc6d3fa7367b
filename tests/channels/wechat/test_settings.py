"""WeChat settings: validated at start with a message naming the bad setting; the channel is
off (no route, no API client) unless the token is set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.channels import registry
from bot.channels.wechat.settings import WeChatSettings
from bot.config import ConfigError, load_settings
from bot.runtime import Runtime
from tests.channels.wechat.wechat_helpers import AES_KEY


def settings_with(tmp_path: Path, **env: str) -> Any:
    return registry.check(load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path),
                                                 **{f"QIBOT_{k.upper()}": v for k, v in env.items()}}))


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"wechat_token": "abc123", "wechat_aes_key": "short"}, "QIBOT_WECHAT_AES_KEY"),
        ({"wechat_token": "abc123", "wechat_aes_key": AES_KEY[:-1] + "="}, "QIBOT_WECHAT_AES_KEY"),
        ({"wechat_token": "ab"}, "QIBOT_WECHAT_TOKEN"),
        ({"wechat_token": "has space"}, "QIBOT_WECHAT_TOKEN"),
        ({"wechat_token": "abc123", "wechat_mode": "secure"}, "QIBOT_WECHAT_MODE"),
        ({"wechat_token": "abc123", "wechat_mode": "safe"}, "QIBOT_WECHAT_AES_KEY"),
        ({"wechat_token": "abc123", "wechat_aes_key": AES_KEY}, "QIBOT_WECHAT_APP_ID"),
        ({"wechat_token": "abc123", "wechat_app_id": "wx1"}, "QIBOT_WECHAT_APP_SECRET"),
        ({"wechat_reply_budget": "5"}, "QIBOT_WECHAT_REPLY_BUDGET"),
        ({"wechat_reply_budget": "fast"}, "QIBOT_WECHAT_REPLY_BUDGET"),
        ({"wechat_timestamp_window": "0"}, "QIBOT_WECHAT_TIMESTAMP_WINDOW"),
        ({"wechat_api_base_url": "api.weixin.qq.com"}, "QIBOT_WECHAT_API_BASE_URL"),
    ],
)
def test_bad_wechat_settings_name_the_setting(tmp_path: Path, env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        settings_with(tmp_path, **env)


def test_defaults_and_the_derived_mode(tmp_path: Path) -> None:
    off = settings_with(tmp_path)
    assert (off.wechat_token, off.wechat_reply_budget, off.wechat_timestamp_window) == ("", 4.0, 300)
    assert off.wechat_api_base_url == "https://api.weixin.qq.com"
    assert WeChatSettings.parse(settings_with(tmp_path, wechat_token="abc123")).mode == "plain"
    safe = settings_with(tmp_path, wechat_token="abc123", wechat_aes_key=AES_KEY, wechat_app_id="wx1",
                         wechat_app_secret="s", wechat_reply_budget="2.5")
    assert WeChatSettings.parse(safe).mode == "safe" and safe.wechat_reply_budget == 2.5


async def test_without_a_token_there_is_no_wechat_route(aiohttp_client: Any, runtime: Runtime,
                                                        tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(settings_with(tmp_path), runtime))
    assert (await client.get("/wechat")).status == 404
    assert (await client.post("/wechat", data=b"<xml/>")).status in (404, 405)


def test_an_aes_key_with_base64_signs_says_which_characters_are_wrong(tmp_path: Path) -> None:
    """A key generated with a base64 tool (not the console) has the right length and '+' or '/':
    the message must not say only "43 characters" as if the length were the problem."""
    key = "a+b/" + AES_KEY[4:]
    with pytest.raises(ConfigError, match=r"QIBOT_WECHAT_AES_KEY: .*found '\+' '/'"):
        settings_with(tmp_path, wechat_token="abc123", wechat_aes_key=key, wechat_app_id="wx1")
