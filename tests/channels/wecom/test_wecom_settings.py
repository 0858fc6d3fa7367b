"""WeCom settings: all or nothing, validated at start, named without echoing secrets."""

from __future__ import annotations

import pytest

from bot.channels import registry
from bot.config import ConfigError, Settings
from bot.config import load_settings as load_core
from tests.channels.wecom.wecom_helpers import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN

FULL = {"QIBOT_WECOM_CORP_ID": CORP_ID, "QIBOT_WECOM_AGENT_ID": AGENT_ID, "QIBOT_WECOM_SECRET": SECRET,
        "QIBOT_WECOM_TOKEN": TOKEN, "QIBOT_WECOM_AES_KEY": AES_KEY}


def load_settings(environ: dict[str, str]) -> Settings:
    """What every qibot command does at start: core settings, then each channel's own checks."""
    return registry.check(load_core(environ=environ))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"QIBOT_WECOM_SECRET": ""}, "QIBOT_WECOM_SECRET"),
        ({"QIBOT_WECOM_AES_KEY": AES_KEY[:-1]}, "QIBOT_WECOM_AES_KEY"),
        ({"QIBOT_WECOM_AGENT_ID": "app"}, "QIBOT_WECOM_AGENT_ID"),
        ({"QIBOT_WECOM_TOKEN": "bad token!"}, "QIBOT_WECOM_TOKEN"),
        ({"QIBOT_WECOM_API_BASE_URL": "qyapi.weixin.qq.com"}, "QIBOT_WECOM_API_BASE_URL"),
    ],
)
def test_bad_wecom_settings_are_named(change: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as refused:
        load_settings(environ={**FULL, **change})
    assert SECRET not in str(refused.value) and AES_KEY[:20] not in str(refused.value)


def test_a_robot_key_alone_is_not_enough() -> None:
    with pytest.raises(ConfigError, match="QIBOT_WECOM_CORP_ID"):
        load_settings(environ={"QIBOT_WECOM_ROBOT_KEY": "k"})
    assert load_settings(environ=FULL).wecom_corp_id == CORP_ID
    assert load_settings(environ={}).wecom_corp_id == ""
