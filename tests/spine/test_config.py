from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings


def test_defaults_use_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path)})
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{(tmp_path / 'qibot.db').resolve()}"
    assert settings.is_sqlite
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


def test_environment_overrides_toml_and_flags_override_environment(tmp_path: Path) -> None:
    config = tmp_path / "qibot.toml"
    config.write_text('[qibot]\nport = 9000\nlog_level = "debug"\nhost = "0.0.0.0"\n', encoding="utf-8")
    settings = load_settings(environ={"QIBOT_CONFIG": str(config), "QIBOT_PORT": "9100"})
    assert settings.port == 9100
    assert settings.log_level == "DEBUG"
    assert settings.host == "0.0.0.0"
    settings = load_settings(environ={"QIBOT_PORT": "9100"}, overrides={"port": 9200, "host": None})
    assert settings.port == 9200


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"QIBOT_PORT": "eighty"}, "QIBOT_PORT"),
        ({"QIBOT_PORT": "70000"}, "QIBOT_PORT"),
        ({"QIBOT_LOG_LEVEL": "LOUD"}, "QIBOT_LOG_LEVEL"),
        ({"QIBOT_DATABASE_URL": "mysql://root@localhost/qibot"}, "QIBOT_DATABASE_URL"),
        ({"QIBOT_COOKIE_SECURE": "perhaps"}, "QIBOT_COOKIE_SECURE"),
        ({"QIBOT_KB_DIR": "/nonexistent/kb"}, "QIBOT_KB_DIR"),
        ({"QIBOT_CONFIG": "/nonexistent/qibot.toml"}, "QIBOT_CONFIG"),
        ({"QIBOT_OUTBOX_CONCURRENCY": "0"}, "QIBOT_OUTBOX_CONCURRENCY"),
        ({"QIBOT_OUTBOX_TIMEOUT": "0.01"}, "QIBOT_OUTBOX_TIMEOUT"),
    ],
)
def test_a_bad_setting_is_rejected_with_its_name(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ=environ)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(environ={"QIBOT_CONFIG": str(config)})


def test_unknown_settings_are_reported_not_silently_dropped() -> None:
    settings = load_settings(environ={"QIBOT_DATABSE_URL": "postgresql+asyncpg://x/y", "PATH": "/bin"})
    assert settings.unknown == ("QIBOT_DATABSE_URL",)
    assert settings.is_sqlite
