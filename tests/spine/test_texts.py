"""Reply texts: compiled once per file version, reloaded when the file changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.texts import Texts


def write(path: Path, greeting: str, mtime_ns: int) -> None:
    path.write_text(f"hello:\n  zh: \"{greeting}，{{{{ name }}}}\"\n  en: \"Hello, {{{{ name }}}}\"\n",
                    encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_an_unchanged_file_is_compiled_once_and_an_edit_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "texts.yaml"
    write(path, "您好", 1_700_000_000_000_000_000)
    first = Texts.load(path)
    assert Texts.load(path) is first  # the next runtime start reuses the compiled templates
    assert first.render("hello", name="王经理") == "您好，王经理"
    assert first.render("hello", "en", name="Wang") == "Hello, Wang"
    write(path, "你好", 1_700_000_000_500_000_000)  # the curator edits the file
    assert Texts.load(path).render("hello", name="王经理") == "你好，王经理"


def test_a_text_without_its_chinese_variant_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "texts.yaml"
    path.write_text("hello:\n  en: Hello\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'hello' needs at least a 'zh' variant"):
        Texts.load(path)
