"""The data files read with libyaml give what PyYAML's own parser gives, so the faster reader
changes nothing a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from intents import yamlfile

ROOT = Path(__file__).resolve().parents[2]
# What the service reads when it runs (the evaluation sets and training examples are read only by
# the build and evaluation commands, and are most of the bytes).
BUNDLED = sorted(p for package in ("bot", "handlers", "intents", "knowledge")
                 for p in (ROOT / package).rglob("*.yaml")
                 if p.parent.name != "train" and p.name not in ("blind.yaml", "heldout.yaml"))


def test_the_c_parser_is_used_where_pyyaml_has_it() -> None:
    assert yamlfile.SafeLoader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def test_every_bundled_file_reads_as_with_the_pure_python_parser() -> None:
    assert len(BUNDLED) > 30
    differ = [str(path.relative_to(ROOT)) for path in BUNDLED
              if yamlfile.read(path) != yaml.safe_load(path.read_text(encoding="utf-8"))]
    assert differ == []


def test_dates_stay_text_and_other_types_do_not() -> None:
    data = yamlfile.load("day: 2027-02-30\nwhen: 2026-12-07\nn: 3\nok: true\n", yamlfile.TextDateLoader)
    assert data == {"day": "2027-02-30", "when": "2026-12-07", "n": 3, "ok": True}
    assert str(yamlfile.load("when: 2026-12-07")["when"]) == "2026-12-07"  # a date object by default


def test_unsafe_tags_are_refused() -> None:
    with pytest.raises(yaml.YAMLError):
        yamlfile.load("!!python/object/apply:os.system ['true']")
