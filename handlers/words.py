"""Matching short answers ("确认", "结束人工", "2"): normalised, without punctuation or spaces."""

from __future__ import annotations

import re

from intents.normalize import normalize

_PUNCT = re.compile(r"[\s,，。.!！?？~～:：;；、\"“”'‘’()（）]+")


def bare(text: str) -> str:
    return _PUNCT.sub("", normalize(text).text)


def strip_punct(canonical: str) -> str:
    """:func:`bare` of text that is already normalised (the NLU's), without normalising again."""
    return _PUNCT.sub("", canonical)
