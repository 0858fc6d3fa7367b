"""Telegram settings are validated at start, naming the bad setting and never echoing a secret."""

from __future__ import annotations

import pytest

from bot.channels import registry
from bot.config import ConfigError, Settings
from bot.config import load_settings as load_core
from tests.channels.telegram.telegram_helpers import SECRET, TOKEN


def load_settings(environ: dict[str, str]) -> Settings:
    """What every qibot command does at start: core settings, then each channel's own checks."""
    return registry.check(load_core(environ=environ))


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"QIBOT_TELEGRAM_TOKEN": "not-a-token"}, "QIBOT_TELEGRAM_TOKEN"),
        ({"QIBOT_TELEGRAM_TOKEN": TOKEN}, "QIBOT_TELEGRAM_SECRET_TOKEN"),  # webhook mode needs the secret
        ({"QIBOT_TELEGRAM_TOKEN": TOKEN, "QIBOT_TELEGRAM_SECRET_TOKEN": "has space"}, "QIBOT_TELEGRAM_SECRET_TOKEN"),
        ({"QIBOT_TELEGRAM_SECRET_TOKEN": "x" * 257}, "QIBOT_TELEGRAM_SECRET_TOKEN"),
        ({"QIBOT_TELEGRAM_MODE": "push"}, "QIBOT_TELEGRAM_MODE"),
        ({"QIBOT_TELEGRAM_API_BASE_URL": "api.telegram.org"}, "QIBOT_TELEGRAM_API_BASE_URL"),
        ({"QIBOT_TELEGRAM_SHARE_PERSONAL_DATA": "maybe"}, "QIBOT_TELEGRAM_SHARE_PERSONAL_DATA"),
    ],
)
def test_bad_telegram_settings_are_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as refused:
        load_settings(environ=environ)
    assert TOKEN.split(":")[1] not in str(refused.value)


def test_defaults_keep_telegram_off_and_private() -> None:
    settings = load_settings(environ={})
    assert settings.telegram_token == "" and settings.telegram_mode == "webhook"
    assert settings.telegram_share_personal_data is False and settings.telegram_enterprise_chat is False
    polling = load_settings(environ={"QIBOT_TELEGRAM_TOKEN": TOKEN, "QIBOT_TELEGRAM_MODE": "polling"})
    assert polling.telegram_secret_token == ""  # polling needs no webhook secret
    assert load_settings(environ={"QIBOT_TELEGRAM_TOKEN": TOKEN, "QIBOT_TELEGRAM_SECRET_TOKEN": SECRET})
