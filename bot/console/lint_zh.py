"""The knowledge linter's findings in Chinese for the console (the linter speaks English to the
command line). The wording is data: ``bot/data/kb_lint_zh.yaml``, one regular expression per
message; a message no rule matches is shown as it is."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from intents import yamlfile

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "kb_lint_zh.yaml"
_GROUP = re.compile(r"\{(\d)\}")


@lru_cache(maxsize=1)
def _rules() -> tuple[tuple[re.Pattern[str], str], ...]:
    raw = yamlfile.read(RULES_FILE) or []
    return tuple((re.compile(str(rule["pattern"])), str(rule["zh"])) for rule in raw)


def _fill(template: str, groups: tuple[str | None, ...]) -> str:
    return _GROUP.sub(lambda m: groups[int(m.group(1)) - 1] or "", template)


def in_chinese(message: str) -> str:
    for pattern, template in _rules():
        found = pattern.fullmatch(message)
        if found is not None:
            return _fill(template, found.groups())
    return message


__all__ = ["in_chinese"]
