"""Every Telegram client of the process shares one verified TLS context (building one loads the
whole CA bundle), and sharing it turns no verification off."""

from __future__ import annotations

import ssl
from typing import Any

from bot.channels.telegram.application import build_application
from bot.channels.telegram.notifier import build_bot
from bot.channels.telegram.settings import TelegramSettings
from bot.channels.telegram.transport import tls_context


def _contexts(requests: Any) -> list[Any]:
    return [request._client_kwargs["verify"] for request in requests]


def test_bots_and_applications_share_one_verifying_context() -> None:
    config = TelegramSettings(token="123:abc", secret_token="", api_base_url="https://api.telegram.org",
                              mode="webhook", share_personal_data=False, enterprise_chat=False)
    first, second = build_bot(config), build_bot(config)
    shared = tls_context()
    assert all(context is shared for bot in (first, second) for context in _contexts(bot._request))
    application = build_application(config, deps=None)  # type: ignore[arg-type]
    assert all(context is shared for context in _contexts(application.bot._request))
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    assert shared.cert_store_stats()["x509_ca"] > 50  # the CA bundle is loaded
