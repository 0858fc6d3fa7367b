"""Operator actions on the Official Account (``qibot wechat ...``)."""

from __future__ import annotations

from typing import Any

from bot.channels.wechat.api import WeChatApi
from bot.channels.wechat.menu import Menu, default_menu
from bot.channels.wechat.settings import WeChatSettings
from bot.config import ConfigError, Settings
from bot.storage import db


async def create_menu(settings: Settings, menu: Menu | None = None) -> dict[str, Any]:
    """Replace the account's custom menu with ``menu.yaml``; returns the definition sent.
    Uses the shared access token (so a running server's token stays valid)."""
    config = WeChatSettings.parse(settings)
    if not (config.app_id and config.app_secret):
        raise ConfigError("QIBOT_WECHAT_APP_ID and QIBOT_WECHAT_APP_SECRET: both are needed to create the menu")
    definition = (menu or default_menu()).definition
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    await db.upgrade(url)
    engine = db.create_engine(url)
    api = WeChatApi(config.api_base_url, config.app_id, config.app_secret, db.session_factory(engine))
    try:
        await api.create_menu(definition)
    finally:
        await api.close()
        await engine.dispose()
    return definition
