"""Text normalisation shared by the NLU and the knowledge base.

Enterprises write Simplified and Traditional Chinese, full-width Latin letters and digits, stray
control characters and mixed case. Everything downstream (classifier features, retrieval tokens,
extractors) works on one canonical form, so the conversions live here and nowhere else. The
user's original script is recorded, because replies go back in the script the user wrote.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import jieba
import opencc

Script = Literal["hans", "hant", "latin", "none"]

DATA_DIR = Path(__file__).parent / "data"
USER_DICT = DATA_DIR / "userdict.txt"

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Normalized:
    """One user text in canonical form, plus what we learned about how it was written."""

    original: str
    text: str
    script: Script
    language: Literal["zh", "en"]


@cache
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def _clean(text: str) -> str:
    """NFKC folds full-width forms to half-width; control and format characters become spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") else ch for ch in text)
    return _SPACES.sub(" ", text).strip()


def detect_script(text: str) -> Script:
    """Which script the user wrote in: Traditional if the text has more Traditional-only
    characters than Simplified-only ones."""
    cjk = "".join(_CJK.findall(text))
    if not cjk:
        return "latin" if _LATIN.search(text) else "none"
    to_simplified = _converter("t2s").convert(cjk)
    to_traditional = _converter("s2t").convert(cjk)
    traditional_only = sum(a != b for a, b in zip(cjk, to_simplified, strict=False))
    simplified_only = sum(a != b for a, b in zip(cjk, to_traditional, strict=False))
    return "hant" if traditional_only > simplified_only else "hans"


def normalize(text: str) -> Normalized:
    """Canonical form: NFKC (full-width → half-width), Traditional → Simplified, case-folded,
    whitespace collapsed, control characters removed."""
    cleaned = _clean(text)
    script = detect_script(cleaned)
    canonical = _converter("t2s").convert(cleaned) if script == "hant" or _CJK.search(cleaned) else cleaned
    language: Literal["zh", "en"] = "en" if script == "latin" else "zh"
    return Normalized(original=text, text=canonical.casefold(), script=script, language=language)


def to_script(text: str, script: Script) -> str:
    """Render a Simplified reply in the user's script (Taiwan-standard characters for Traditional)."""
    if script == "hant":
        return _converter("s2tw").convert(text)
    return text


_tokenizer_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None


def tokenizer() -> jieba.Tokenizer:
    """One jieba tokenizer with the domain dictionary, built lazily and shared by NLU and KB."""
    global _tokenizer
    if _tokenizer is None:
        with _tokenizer_lock:
            if _tokenizer is None:
                tok = jieba.Tokenizer()
                jieba.setLogLevel(60)
                tok.initialize()
                if USER_DICT.exists():
                    tok.load_userdict(str(USER_DICT))
                _tokenizer = tok
    return _tokenizer


def segment(text: str) -> list[str]:
    """Words of an already-normalised text, without whitespace tokens."""
    return [w for w in tokenizer().lcut(text) if w.strip()]
