"""Reading the project's YAML data files: one safe loader, libyaml's C parser when PyYAML was built
with it (its wheels are).

Every start, every CLI command and every test reads these files (texts, vocabulary, calendar,
entries, training examples); the C parser reads them about 9 times faster than PyYAML's pure-Python
one, with the same result (``tests/intents/test_yamlfile.py`` compares both on every bundled file).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # CSafeLoader has SafeLoader's interface, which is all used here
    SafeLoader = yaml.SafeLoader
else:
    SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = ["SafeLoader", "TextDateLoader", "load", "read"]


class TextDateLoader(SafeLoader):
    """Safe loader that leaves dates as strings, so a bad date (2027-02-30) is reported on its
    record, with its position, instead of failing inside the parser for the whole file."""


TextDateLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in SafeLoader.yaml_implicit_resolvers.items()
}


def load(source: str | bytes, loader: type[SafeLoader] = SafeLoader) -> Any:
    """One YAML document from text (``yaml.safe_load``, faster)."""
    return yaml.load(source, Loader=loader)


def read(path: Path, loader: type[SafeLoader] = SafeLoader) -> Any:
    """One YAML document from a UTF-8 file."""
    return load(path.read_text(encoding="utf-8"), loader)
