"""Settings: defaults < optional TOML file < QIBOT_* environment < command-line flags.

Everything is validated once at start, and a bad value stops the process with a message that
names the setting, so a typo in a deployment fails loudly instead of running half-configured.
The core rules are here; each channel's section is validated by the channel itself
(:func:`bot.channels.registry.check`, which every ``qibot`` command runs after loading).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "QIBOT_"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_DB_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("./data")
    database_url: str = ""  # empty: SQLite file in data_dir
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    log_format: str = "text"  # text | json: one JSON object a line, with the request id (docs/operations.md)
    # Who may read /metrics: these addresses/networks (default: this machine only), or anyone
    # sending "Authorization: Bearer <metrics_token>" when a token is set.
    metrics_allow: str = "127.0.0.1,::1"
    metrics_token: str = ""
    public_url: str = ""  # how users reach the service; used in links sent to commissioners
    max_message_chars: int = 2000  # longer messages get a polite "too long" reply (and are kept)
    outbox_concurrency: int = 4  # deliveries in flight per channel (one at a time per recipient)
    outbox_timeout: float = 15.0  # seconds a platform may take to accept one notification
    max_body_bytes: int = 64 * 1024  # HTTP request bodies above this get 413
    cookie_secure: bool = False  # set behind HTTPS
    # Who runs the service and how to reach them, shown on the web chat's welcome screen.
    operator_name: str = "厦门市质量基础设施“一站式”协同服务平台"
    operator_contact: str = ""  # a phone number or address; empty: the page offers 转人工 instead
    privacy_url: str = "/static/privacy.html"  # the privacy notice: an http(s) URL or a path on this site
    kb_dir: Path | None = None  # None: the bundled knowledge base
    # Seconds between a worker's checks for knowledge edits published in the console on another
    # worker (the fallback: with Redis the "kb changed" event reloads at once).
    kb_poll_seconds: float = 30.0
    # Public holidays of further years, merged over the bundled calendar (README, "Working
    # calendar"). None: <data_dir>/calendar.yaml when it exists.
    calendar_file: Path | None = None
    escalation_hours: int = 4  # working hours before an unaccepted case goes to the site supervisor
    live_idle_minutes: int = 30  # a live handoff with no message either way for this long ends
    rating_reminder_hours: int = 24
    auto_close_days: int = 7  # resolved but unrated cases are closed and archived after this
    archive_retention_years: int = 3  # the standard asks for at least 3 (6.10)
    # 按时办结: working days from opening a case to its resolution (the on-time completion rate).
    completion_working_days: int = 10
    # 好差评: working days to follow up a bad rating up to the reply to the enterprise, and the
    # default rectification deadline (local rules say 5, 7 or 15).
    followup_working_days: int = 5
    sql_echo: bool = False
    # Channel sections: raw values only. Each channel parses and validates its own section
    # (bot/channels/<name>/settings.py, through bot/channels/registry.py), so the rules of a
    # channel live with the channel; here are the QIBOT_* names and their defaults.
    # WeChat Official Account: the channel is on when wechat_token is set (see README).
    wechat_token: str = ""
    wechat_app_id: str = ""
    wechat_app_secret: str = ""
    wechat_aes_key: str = ""  # EncodingAESKey, 43 characters; enables encrypted callbacks
    wechat_mode: str = ""  # plain | compatible | safe; empty: safe with an AES key, plain without
    wechat_api_base_url: str = "https://api.weixin.qq.com"
    wechat_reply_budget: float = 4.0  # seconds to answer passively before falling back to a push
    wechat_timestamp_window: int = 300  # seconds a callback timestamp may differ from our clock
    # Choices as tappable links (weixin://bizmsgmenu) in replies and menu messages (msgmenu) in
    # pushes; false: the plain "· 1 …" lines to type from.
    wechat_tappable_choices: bool = True
    # Telegram for commissioners (optionally enterprises): on when telegram_token is set (README).
    telegram_token: str = ""
    telegram_secret_token: str = ""  # Telegram echoes it in X-Telegram-Bot-Api-Secret-Token
    telegram_api_base_url: str = "https://api.telegram.org"
    telegram_mode: str = "webhook"  # webhook | polling (development)
    # Telegram is a cross-border service (PIPL arts. 38-39): no enterprise personal data unless true.
    telegram_share_personal_data: bool = False
    telegram_enterprise_chat: bool = False  # chats that are not linked commissioners talk to the bot
    # WeCom (企业微信) app for commissioners: on when wecom_corp_id is set (README).
    wecom_corp_id: str = ""
    wecom_agent_id: str = ""
    wecom_secret: str = ""
    wecom_token: str = ""
    wecom_aes_key: str = ""  # EncodingAESKey, 43 characters; WeCom callbacks are always encrypted
    wecom_api_base_url: str = "https://qyapi.weixin.qq.com"
    wecom_robot_key: str = ""  # optional group robot of a team chat; a secret
    # Abuse limits (README, "Limits"). Rates use the syntax "N/period" joined by ";", e.g.
    # "12/10 seconds;60/minute"; empty turns a rate off, 0 turns a count off.
    redis_url: str = ""  # redis://host:port/db: rates and counters shared by every worker; empty: in memory
    redis_prefix: str = "qibot"  # key prefix, so several deployments can share one Redis
    trusted_proxies: str = ""  # comma-separated addresses/networks whose X-Forwarded-For is believed
    limit_messages: str = "12/10 seconds;60/minute"  # per chat user: a pasted paragraph of lines passes
    limit_messages_per_ip: str = "40/10 seconds;300/minute"  # per web address: a whole office behind one NAT
    limit_ws_per_ip: int = 20  # open WebSockets per web address
    limit_ws_per_session: int = 5  # open WebSockets per web session (browser tabs)
    limit_openings_per_ip: str = "10/hour;30/day"  # cases, handoffs and complaints started from one web address
    limit_open_cases: int = 5  # open cases (new or accepted) per enterprise, or per mobile across enterprises
    limit_complaints_per_day: int = 3  # per enterprise
    limit_handoffs_per_hour: int = 3  # per enterprise
    limit_web_cases_per_hour: int = 60  # cases and complaints from the whole web chat: a circuit breaker
    # Staff console (README, "Console"): failed sign-ins counted per login and per address.
    limit_login: str = "5/minute;20/hour"
    limit_login_per_ip: str = "20/minute;100/hour"
    console_idle_minutes: int = 30  # a console session unused this long must sign in again
    # QIBOT_* keys this version does not know; logged as a warning at start, since a typo such as
    # QIBOT_DATABSE_URL would otherwise silently fall back to the default.
    unknown: tuple[str, ...] = ()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'qibot.db').resolve()}"

    @property
    def cluster(self) -> bool:
        """Several workers can serve this configuration: a database server (not the embedded
        SQLite file) and Redis for live events between them."""
        return bool(self.redis_url) and not self.effective_database_url.startswith("sqlite")

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "unknown"}


def _coerce(name: str, raw: Any, annotation: str) -> Any:
    env_name = ENV_PREFIX + name.upper()
    text = str(raw).strip() if not isinstance(raw, bool | int | float) else raw
    try:
        if annotation == "int":
            if isinstance(text, bool):
                raise ValueError
            return int(text)
        if annotation == "float":
            if isinstance(text, bool):
                raise ValueError
            return float(text)
        if annotation == "bool":
            if isinstance(text, bool):
                return text
            lowered = str(text).lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        if annotation == "Path":
            return Path(str(text)).expanduser()
        if annotation == "Path | None":
            return Path(str(text)).expanduser() if str(text) else None
        return str(text)
    except ValueError:
        kind = {"int": "an integer", "bool": "true or false"}.get(annotation, annotation)
        raise ConfigError(f"{env_name}: expected {kind}, got {raw!r}") from None


def _validate(settings: Settings) -> None:
    if not 1 <= settings.port <= 65535:
        raise ConfigError(f"QIBOT_PORT: must be between 1 and 65535, got {settings.port}")
    if settings.log_level.upper() not in _LOG_LEVELS:
        raise ConfigError(f"QIBOT_LOG_LEVEL: must be one of {', '.join(_LOG_LEVELS)}, got {settings.log_level!r}")
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f"QIBOT_LOG_FORMAT: must be text or json, got {settings.log_format!r}")
    for part in filter(None, (p.strip() for p in settings.metrics_allow.split(","))):
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ConfigError(f"QIBOT_METRICS_ALLOW: {part!r} is not an address or network") from None
    if settings.metrics_token and len(settings.metrics_token) < 16:
        raise ConfigError("QIBOT_METRICS_TOKEN: use at least 16 characters")
    if settings.database_url:
        scheme = settings.database_url.split("://", 1)[0]
        if "://" not in settings.database_url or scheme not in _DB_SCHEMES:
            raise ConfigError(
                f"QIBOT_DATABASE_URL: must start with {' or '.join(s + '://' for s in _DB_SCHEMES)}, "
                f"got {scheme!r}"
            )
    if settings.max_message_chars < 1:
        raise ConfigError("QIBOT_MAX_MESSAGE_CHARS: must be positive")
    if not 1 <= settings.outbox_concurrency <= 64:
        raise ConfigError(f"QIBOT_OUTBOX_CONCURRENCY: must be between 1 and 64, got {settings.outbox_concurrency}")
    if not 0.5 <= settings.outbox_timeout <= 300:
        raise ConfigError(f"QIBOT_OUTBOX_TIMEOUT: must be between 0.5 and 300 seconds, got {settings.outbox_timeout}")
    for name in ("escalation_hours", "live_idle_minutes", "rating_reminder_hours", "auto_close_days",
                 "console_idle_minutes", "completion_working_days", "followup_working_days"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"QIBOT_{name.upper()}: must be at least 1")
    if settings.archive_retention_years < 3:
        raise ConfigError("QIBOT_ARCHIVE_RETENTION_YEARS: the standard requires at least 3 years")
    if settings.max_body_bytes < 1024:
        raise ConfigError("QIBOT_MAX_BODY_BYTES: must be at least 1024")
    url = settings.privacy_url
    if not (url.startswith(("https://", "http://")) or (url.startswith("/") and not url.startswith("//"))):
        raise ConfigError(f"QIBOT_PRIVACY_URL: must be an http(s):// URL or a path starting with /, got {url!r}")
    _validate_limits(settings)
    if not 0.05 <= settings.kb_poll_seconds <= 3600:
        raise ConfigError(f"QIBOT_KB_POLL_SECONDS: must be between 0.05 and 3600, got {settings.kb_poll_seconds}")
    if settings.kb_dir is not None and not settings.kb_dir.is_dir():
        raise ConfigError(f"QIBOT_KB_DIR: {settings.kb_dir} is not a directory")
    if settings.calendar_file is not None and not settings.calendar_file.is_file():
        raise ConfigError(f"QIBOT_CALENDAR_FILE: {settings.calendar_file} is not a file")


_RATE_SETTINGS = ("limit_messages", "limit_messages_per_ip", "limit_openings_per_ip", "limit_login",
                  "limit_login_per_ip")
_COUNT_SETTINGS = ("limit_ws_per_ip", "limit_ws_per_session", "limit_open_cases", "limit_complaints_per_day",
                   "limit_handoffs_per_hour", "limit_web_cases_per_hour")


def _validate_limits(settings: Settings) -> None:
    """A limit that does not parse would otherwise surface as an error on the first message."""
    from limits import parse_many  # imported here: the rest of the settings need no third-party code

    for name in _RATE_SETTINGS:
        value = getattr(settings, name).strip()
        if not value:
            continue
        try:
            parse_many(value)
        except ValueError:
            raise ConfigError(
                f"QIBOT_{name.upper()}: expected rates such as '12/10 seconds;60/minute', got {value!r}"
            ) from None
    for name in _COUNT_SETTINGS:
        if getattr(settings, name) < 0:
            raise ConfigError(f"QIBOT_{name.upper()}: must be 0 (off) or more")
    if settings.redis_url and not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("QIBOT_REDIS_URL: must start with redis://, rediss:// or unix://")
    for part in filter(None, (p.strip() for p in settings.trusted_proxies.split(","))):
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ConfigError(f"QIBOT_TRUSTED_PROXIES: {part!r} is not an address or network") from None


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build validated settings from a TOML file (QIBOT_CONFIG or ``config_file``), the
    environment and explicit overrides (command-line flags), in that order of precedence."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    unknown: list[str] = []

    path = config_file or (Path(environ["QIBOT_CONFIG"]) if environ.get("QIBOT_CONFIG") else None)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"QIBOT_CONFIG: file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"QIBOT_CONFIG: {path} is not valid TOML: {exc}") from None
        section = data.get("qibot", data)
        for key, raw in section.items():
            if key in _FIELDS:
                values[key] = raw
            else:
                unknown.append(f"{path}: {key}")

    for env_key, raw in environ.items():
        if not env_key.startswith(ENV_PREFIX) or env_key == "QIBOT_CONFIG":
            continue
        key = env_key[len(ENV_PREFIX):].lower()
        if key in _FIELDS:
            values[key] = raw
        else:
            unknown.append(env_key)

    for key, raw in (overrides or {}).items():
        if raw is not None:
            values[key] = raw

    coerced = {k: _coerce(k, v, str(_FIELDS[k].type)) for k, v in values.items()}
    settings = Settings(**coerced, unknown=tuple(unknown))
    _validate(settings)
    return dataclasses.replace(settings, log_level=settings.log_level.upper())


def check_aes_key(name: str, key: str) -> None:
    """A WeChat or WeCom EncodingAESKey is 43 ASCII letters or digits (the platforms' consoles
    generate it; base64 without its padding). Says which rule a bad one breaks."""
    if len(key) != 43:
        raise ConfigError(f"{name}: must be 43 letters or digits, got {len(key)} characters")
    others = sorted({c for c in key if not (c.isascii() and c.isalnum())})
    if others:
        shown = " ".join(repr(c) for c in others[:5])
        raise ConfigError(f"{name}: must be 43 letters or digits (copy it from the console), found {shown}")

