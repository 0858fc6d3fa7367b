"""Reply texts: data in ``texts.yaml``, rendered with Jinja2, one variant per language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml

TEXTS_FILE = Path(__file__).parent / "texts.yaml"


class Texts:
    def __init__(self, templates: dict[str, dict[str, str]]) -> None:
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
        self._templates = {
            key: {lang: env.from_string(text.strip()) for lang, text in variants.items()}
            for key, variants in templates.items()
        }

    @classmethod
    def load(cls, path: Path = TEXTS_FILE) -> Texts:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key, variants in data.items():
            if not isinstance(variants, dict) or "zh" not in variants:
                raise ValueError(f"{path}: text {key!r} needs at least a 'zh' variant")
        return cls(data)

    def render(self, key: str, language: str = "zh", **values: Any) -> str:
        variants = self._templates[key]
        template = variants.get(language) or variants["zh"]
        return template.render(**values)

    def __contains__(self, key: str) -> bool:
        return key in self._templates
