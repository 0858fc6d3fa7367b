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
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import jieba
import opencc

from intents import yamlfile

Script = Literal["hans", "hant", "latin", "none"]
#: How a reply is rendered: Simplified, Taiwan Traditional (characters and the everyday words that
#: differ: 軟體, 資訊, 網路), or Hong Kong Traditional (HK character forms: 裏, 着).
ReplyScript = Literal["hans", "hant", "hant-hk"]

DATA_DIR = Path(__file__).parent / "data"
USER_DICT = DATA_DIR / "userdict.txt"
VARIANTS_FILE = DATA_DIR / "variants.yaml"

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
    hong_kong: bool = False  # Traditional with Hong Kong forms or Cantonese particles

    @property
    def reply_script(self) -> ReplyScript | None:
        """The script replies should use, or None when the text says nothing about it (Latin,
        digits, emoji): then the user's last known script stays."""
        if self.script == "hant":
            return "hant-hk" if self.hong_kong else "hant"
        return "hans" if self.script == "hans" else None


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


class Variants:
    """Typos, pinyin abbreviations, slang and regional usage folded to the words the models know
    (data: ``variants.yaml``). One pass of longest-match replacement, so a rule never rewrites the
    output of another and a word mapped to itself is protected from a shorter rule."""

    def __init__(
        self,
        latin: dict[str, str],
        chinese: dict[str, str],
        traditional: dict[str, str],
        taiwan_replies: dict[str, str] | None = None,
        hong_kong_marks: str = "",
    ) -> None:
        self._latin = latin
        self._taiwan = taiwan_replies or {}
        self._taiwan_rx = _alternation(self._taiwan, "(", ")")
        self._hk_marks = frozenset(hong_kong_marks)
        self._chinese = chinese
        self._traditional = {**chinese, **traditional}
        self._latin_rx = _alternation(latin, r"(?<![a-z0-9])(", r")(?![a-z0-9])")
        self._chinese_rx = _alternation(chinese, "(", ")")
        self._traditional_rx = _alternation(self._traditional, "(", ")")

    @classmethod
    def load(cls, path: Path = VARIANTS_FILE) -> Variants:
        data = yamlfile.read(path) if path.exists() else {}
        sections = {}
        for name in ("latin", "chinese", "traditional", "taiwan_replies"):
            section = (data or {}).get(name) or {}
            if not isinstance(section, dict):
                raise ValueError(f"{path}: '{name}' must be a mapping of spelling → word")
            sections[name] = {str(k).casefold(): str(v) for k, v in section.items() if str(k).strip()}
        marks = str((data or {}).get("hong_kong_marks") or "")
        return cls(
            sections["latin"], sections["chinese"], sections["traditional"], sections["taiwan_replies"], marks
        )

    def taiwan_words(self, simplified: str) -> str:
        """Swap the everyday words that Taiwan says differently (before character conversion)."""
        if self._taiwan_rx is None:
            return simplified
        return self._taiwan_rx.sub(lambda m: self._taiwan[m.group(1)], simplified)

    def is_hong_kong(self, text: str) -> bool:
        """Hong Kong character forms (裏, 着, 綫) or Cantonese particles (嘅, 咗, 唔, 係)."""
        return any(ch in self._hk_marks for ch in text)

    def apply(self, text: str, traditional: bool) -> str:
        if self._latin_rx is not None:
            text = self._latin_rx.sub(lambda m: self._latin[m.group(1)], text)
        mapping, rx = (self._traditional, self._traditional_rx) if traditional else (self._chinese, self._chinese_rx)
        if rx is not None and _CJK.search(text):
            text = rx.sub(lambda m: mapping[m.group(1)], text)
        return text


def _alternation(words: dict[str, str], head: str, tail: str) -> re.Pattern[str] | None:
    if not words:
        return None
    ordered = sorted(words, key=len, reverse=True)
    return re.compile(head + "|".join(re.escape(w) for w in ordered) + tail)


@cache
def variants() -> Variants:
    return Variants.load()


@lru_cache(maxsize=256)
def normalize(text: str) -> Normalized:
    """Canonical form: NFKC (full-width → half-width), Traditional → Simplified at the phrase
    level (Taiwan vocabulary: 軟體 → 软件), case-folded, whitespace collapsed, control characters
    removed, then the typos, abbreviations and regional usage of ``variants.yaml`` folded.

    Remembered for the last texts seen (the result is immutable): one turn normalises its text
    seven or eight times (the NLU, the knowledge search, the extractors and handlers each start
    from the raw text), which cost ~5 % of a turn's CPU."""
    cleaned = _clean(text)
    script = detect_script(cleaned)
    if script == "hant":
        canonical = _converter("tw2sp").convert(cleaned)
    elif _CJK.search(cleaned):
        canonical = _converter("t2s").convert(cleaned)
    else:
        canonical = cleaned
    canonical = variants().apply(canonical.casefold(), traditional=script == "hant")
    language: Literal["zh", "en"] = "en" if script == "latin" else "zh"
    hong_kong = script == "hant" and variants().is_hong_kong(cleaned)
    return Normalized(original=text, text=canonical, script=script, language=language, hong_kong=hong_kong)


def to_script(text: str, script: str) -> str:
    """Render a Simplified reply in the user's script: ``hant`` in Taiwan characters with the
    Taiwan words of ``variants.yaml`` (OpenCC's own phrase table also turns 项目 into 專案 and
    文件 into 檔案, wrong in a legal answer, so only the curated words are swapped), ``hant-hk``
    in Hong Kong characters."""
    if script == "hant":
        return _converter("s2tw").convert(variants().taiwan_words(text))
    if script == "hant-hk":
        return _converter("s2hk").convert(text)
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
