"""The WeChat Official Account's settings section (``QIBOT_WECHAT_*``), parsed and validated by
the channel: core settings only carry the raw values (:class:`bot.config.Settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import ConfigError, Settings, check_aes_key

MODES = ("plain", "compatible", "safe")


@dataclass(frozen=True, slots=True)
class WeChatSettings:
    token: str  # empty: the channel is off
    app_id: str
    app_secret: str
    aes_key: str  # EncodingAESKey, 43 characters; enables encrypted callbacks
    mode: str  # plain | compatible | safe: the configured one, or safe with an AES key, plain without
    api_base_url: str
    reply_budget: float  # seconds to answer passively before falling back to a push
    timestamp_window: int  # seconds a callback timestamp may differ from our clock
    tappable_choices: bool

    @property
    def can_push(self) -> bool:
        """Customer-service pushes need the AppID (and its secret, checked with it)."""
        return bool(self.app_id)

    @classmethod
    def parse(cls, settings: Settings) -> WeChatSettings:
        """Checked even while the channel is off, so a half-filled WeChat section fails at start."""
        mode = settings.wechat_mode
        if mode and mode not in MODES:
            raise ConfigError(f"QIBOT_WECHAT_MODE: must be one of {', '.join(MODES)}, got {mode!r}")
        if not settings.wechat_api_base_url.startswith(("http://", "https://")):
            raise ConfigError("QIBOT_WECHAT_API_BASE_URL: must start with http:// or https://")
        if not 0 < settings.wechat_reply_budget < 5:
            raise ConfigError("QIBOT_WECHAT_REPLY_BUDGET: must be between 0 and 5 seconds (WeChat waits 5)")
        if settings.wechat_timestamp_window < 1:
            raise ConfigError("QIBOT_WECHAT_TIMESTAMP_WINDOW: must be at least 1 second")
        key = settings.wechat_aes_key
        if settings.wechat_token:
            _check_credentials(settings)
        return cls(
            token=settings.wechat_token, app_id=settings.wechat_app_id, app_secret=settings.wechat_app_secret,
            aes_key=key, mode=mode or ("safe" if key else "plain"), api_base_url=settings.wechat_api_base_url,
            reply_budget=settings.wechat_reply_budget, timestamp_window=settings.wechat_timestamp_window,
            tappable_choices=settings.wechat_tappable_choices,
        )


def _check_credentials(settings: Settings) -> None:
    token = settings.wechat_token
    if not (3 <= len(token) <= 32 and token.isascii() and token.isalnum()):
        raise ConfigError("QIBOT_WECHAT_TOKEN: must be 3-32 letters or digits (as entered in the WeChat console)")
    key = settings.wechat_aes_key
    if key:
        check_aes_key("QIBOT_WECHAT_AES_KEY", key)
    if settings.wechat_mode in ("compatible", "safe") and not key:
        raise ConfigError(f"QIBOT_WECHAT_AES_KEY: required when QIBOT_WECHAT_MODE is {settings.wechat_mode}")
    if key and not settings.wechat_app_id:
        raise ConfigError("QIBOT_WECHAT_APP_ID: required with QIBOT_WECHAT_AES_KEY (decrypted messages carry it)")
    if bool(settings.wechat_app_id) and not settings.wechat_app_secret:
        raise ConfigError("QIBOT_WECHAT_APP_SECRET: required with QIBOT_WECHAT_APP_ID (for the access token)")
