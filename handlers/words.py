"""Matching short answers ("确认", "结束人工", "2"): normalised, without punctuation or spaces,
against the word lists of ``data/words.yaml`` (vocabulary is data, reviewed like the texts)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from intents.normalize import normalize

_PUNCT = re.compile(r"[\s,，。.!！?？~～:：;；、\"“”'‘’()（）]+")


def bare(text: str) -> str:
    return _PUNCT.sub("", normalize(text).text)


def strip_punct(canonical: str) -> str:
    """:func:`bare` of text that is already normalised (the NLU's), without normalising again."""
    return _PUNCT.sub("", canonical)


WORDS_FILE = Path(__file__).parent / "data" / "words.yaml"


class WordsError(ValueError):
    """The words file is malformed: a start-up error naming the file and the list."""


@cache
def words(name: str, path: Path = WORDS_FILE) -> frozenset[str]:
    """One list of ``words.yaml`` as a set of :func:`bare` forms. Every word must already be in
    that form (normalisation would otherwise change it and it could never match)."""
    data = _load(path)
    if name not in data:
        raise WordsError(f"{path.name}: no list named {name!r}")
    return data[name]


@cache
def _load(path: Path) -> dict[str, frozenset[str]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise WordsError(f"{path.name}: expected a mapping of list names to words")
    lists: dict[str, frozenset[str]] = {}
    for name, values in raw.items():
        if not isinstance(values, list) or not values:
            raise WordsError(f"{path.name}: {name!r} must be a non-empty list")
        for word in values:
            if not isinstance(word, str):
                raise WordsError(f"{path.name}: {name!r} holds {word!r}, not text (quote yes/no/on/off)")
            if bare(word) != word:
                raise WordsError(f"{path.name}: {name!r} word {word!r} can never match; write it as {bare(word)!r}")
        lists[str(name)] = frozenset(values)
    return lists
