"""Settings: defaults < optional TOML file < QIBOT_* environment < command-line flags.

Everything is validated once at start, and a bad value stops the process with a message that
names the setting, so a typo in a deployment fails loudly instead of running half-configured.
"""

from __future__ import annotations

import dataclasses
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
    public_url: str = ""  # how users reach the service; used in links sent to commissioners
    max_message_chars: int = 2000  # longer messages get a polite "too long" reply (and are kept)
    max_body_bytes: int = 64 * 1024  # HTTP request bodies above this get 413
    cookie_secure: bool = False  # set behind HTTPS
    kb_dir: Path | None = None  # None: the bundled knowledge base
    sql_echo: bool = False
    # QIBOT_* keys this version does not know; logged as a warning at start, since a typo such as
    # QIBOT_DATABSE_URL would otherwise silently fall back to the default.
    unknown: tuple[str, ...] = ()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'qibot.db').resolve()}"

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
    if settings.database_url:
        scheme = settings.database_url.split("://", 1)[0]
        if "://" not in settings.database_url or scheme not in _DB_SCHEMES:
            raise ConfigError(
                f"QIBOT_DATABASE_URL: must start with {' or '.join(s + '://' for s in _DB_SCHEMES)}, "
                f"got {scheme!r}"
            )
    if settings.max_message_chars < 1:
        raise ConfigError("QIBOT_MAX_MESSAGE_CHARS: must be positive")
    if settings.max_body_bytes < 1024:
        raise ConfigError("QIBOT_MAX_BODY_BYTES: must be at least 1024")
    if settings.kb_dir is not None and not settings.kb_dir.is_dir():
        raise ConfigError(f"QIBOT_KB_DIR: {settings.kb_dir} is not a directory")


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

