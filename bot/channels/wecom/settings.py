"""WeCom's settings section (``QIBOT_WECOM_*``), parsed and validated by the channel: core
settings only carry the raw values (:class:`bot.config.Settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import ConfigError, Settings, check_aes_key

_REQUIRED = ("wecom_corp_id", "wecom_agent_id", "wecom_secret", "wecom_token", "wecom_aes_key")


@dataclass(frozen=True, slots=True)
class WeComSettings:
    corp_id: str  # empty: the channel is off
    agent_id: str
    secret: str
    token: str
    aes_key: str  # EncodingAESKey, 43 characters; WeCom callbacks are always encrypted
    api_base_url: str
    robot_key: str  # optional group robot of a team chat; a secret

    @classmethod
    def parse(cls, settings: Settings) -> WeComSettings:
        """All or nothing: a WeCom app half configured would accept callbacks it cannot answer."""
        if not settings.wecom_api_base_url.startswith(("http://", "https://")):
            raise ConfigError("QIBOT_WECOM_API_BASE_URL: must start with http:// or https://")
        if any(getattr(settings, name) for name in (*_REQUIRED, "wecom_robot_key")):
            _check_app(settings)
        return cls(
            corp_id=settings.wecom_corp_id, agent_id=settings.wecom_agent_id, secret=settings.wecom_secret,
            token=settings.wecom_token, aes_key=settings.wecom_aes_key, api_base_url=settings.wecom_api_base_url,
            robot_key=settings.wecom_robot_key,
        )


def _check_app(settings: Settings) -> None:
    for name in _REQUIRED:
        if not getattr(settings, name):
            raise ConfigError(f"QIBOT_{name.upper()}: required when any QIBOT_WECOM_* setting is given")
    if not settings.wecom_agent_id.isdigit():
        raise ConfigError(f"QIBOT_WECOM_AGENT_ID: must be the app's numeric AgentId, got {settings.wecom_agent_id!r}")
    if not (settings.wecom_token.isascii() and settings.wecom_token.isalnum() and len(settings.wecom_token) <= 32):
        raise ConfigError("QIBOT_WECOM_TOKEN: must be up to 32 letters or digits (as set in the WeCom admin console)")
    key = settings.wecom_aes_key
    check_aes_key("QIBOT_WECOM_AES_KEY", key)
