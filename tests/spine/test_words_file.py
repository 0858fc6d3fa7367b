"""The flows' short-answer vocabulary is data (handlers/data/words.yaml), checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.words import WordsError, words


def test_the_bundled_lists_load_and_hold_what_users_type() -> None:
    assert "结束人工" in words("live_end")
    assert {"是", "yes"} <= words("knowledge_yes")
    assert "不同意" in words("consent_decline")


@pytest.mark.parametrize(("content", "message"), [
    ("yes_words: [是, yes]\n", "quote yes/no/on/off"),
    ("end: [結束人工]\n", "can never match; write it as '结束人工'"),
    ("end: [结束 人工]\n", "can never match"),
    ("end: []\n", "must be a non-empty list"),
    ("- 是\n", "expected a mapping"),
])
def test_a_word_that_could_never_match_is_refused_with_its_list(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "words.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(WordsError, match=message):
        words("end", path)


def test_an_unknown_list_is_named(tmp_path: Path) -> None:
    path = tmp_path / "words.yaml"
    path.write_text("end: [结束人工]\n", encoding="utf-8")
    with pytest.raises(WordsError, match="no list named 'start'"):
        words("start", path)
