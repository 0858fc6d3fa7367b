"""Texts users read, kept in YAML files and rendered with Jinja2, one variant per language.

Handlers use ``handlers/texts.yaml``; domain services use ``bot/data/notifications.yaml`` for
the messages they send on their own (status changes, rating requests, escalations)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

from intents import yamlfile

NOTIFICATIONS_FILE = Path(__file__).parent / "data" / "notifications.yaml"


class Texts:
    def __init__(self, templates: dict[str, dict[str, str]]) -> None:
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
        self._templates = {
            key: {lang: env.from_string(str(text).strip()) for lang, text in variants.items()}
            for key, variants in templates.items()
        }

    @classmethod
    def load(cls, path: Path) -> Texts:
        """The texts of ``path``. Compiling the templates is most of a runtime's start when the
        models are already loaded (tests, a reload): texts are immutable, so one compiled set
        serves every start until the file changes (its modification time or size)."""
        stat = path.stat()
        return _compiled(path.resolve(), stat.st_mtime_ns, stat.st_size)

    def render(self, key: str, language: str = "zh", **values: Any) -> str:
        variants = self._templates[key]
        template = variants.get(language) or variants["zh"]
        return template.render(**values)

    def __contains__(self, key: str) -> bool:
        return key in self._templates


@functools.lru_cache(maxsize=16)
def _compiled(path: Path, mtime_ns: int, size: int) -> Texts:
    data = yamlfile.read(path)
    for key, variants in data.items():
        if not isinstance(variants, dict) or "zh" not in variants:
            raise ValueError(f"{path}: text {key!r} needs at least a 'zh' variant")
    return Texts(data)


_notifications: Texts | None = None


def notifications() -> Texts:
    """The service notification texts, loaded once."""
    global _notifications
    if _notifications is None:
        _notifications = Texts.load(NOTIFICATIONS_FILE)
    return _notifications
