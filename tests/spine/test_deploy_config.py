from pathlib import Path

from bot.config import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "qibot.example.toml"


def test_the_example_production_config_is_valid_and_complete() -> None:
    settings = load_settings(environ={}, config_file=EXAMPLE)
    assert settings.unknown == ()
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.cookie_secure is True
    assert settings.archive_retention_years >= 3
