"""Feature extraction for the classifier: one function from canonical text to named features.

The same code path produces features at training time and at parse time, so the two can never
drift apart. Features are strings (``c:`` character n-grams, ``w:`` jieba words, ``e:`` English
stems, ``p:`` pinyin bigrams, ``ld:``/``la:`` lexicon hits, ``x:`` extractor signals, ``len:``
length bucket); the vectoriser in :mod:`intents.linear` turns them into TF-IDF weights.

Why these:
* character n-grams are robust to typos, unknown instrument names and missing word boundaries;
* jieba words (with the domain user dictionary) add whole-term evidence ("首席质量官");
* the curated lexicon generalises to terms that appear in no training sentence: every term of a
  label fires the same feature, so the model learns one weight per label and applies it to all of
  them — a learned prior, not a keyword rule;
* English word stems let "calibrated" learn from "calibration";
* pinyin of adjacent characters survives homophone typos from pinyin input methods ("认正" for
  "认证"): with two such typos per held-out message, domain accuracy 97.7 % → 98.8 %;
* extractor signals (a case number, a credit code, a score) abstract away the digits, which are
  different in every message.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from intents import extract
from intents.dataset import Lexicon
from intents.normalize import normalize, segment
from intents.pinyin_table import PINYIN

#: Longest text (in characters) the classifier reads. Intents are stated early; the cap bounds
#: latency on pasted documents (a 10,000-character message costs the same as a 300-character one).
MAX_CHARS = 300

_BOS, _EOS = "\x02", "\x03"
_CASE_MARK, _MOBILE_MARK, _CODE_MARK = "§", "☎", "¤"
_DIGITS = re.compile(r"\d+")
_ASCII_TERM = re.compile(r"[a-z0-9][a-z0-9 ./\-+]*")
_ENGLISH_WORD = re.compile(r"[a-z]{3,}")
_SUFFIXES = ("ations", "ation", "ings", "ing", "ions", "ion", "ers", "er", "ed", "es", "ly", "s")


def english_stem(word: str) -> str:
    """Crude suffix stripping ("calibrated", "calibration" → "calibr"): English messages are few
    in the training data, so inflected forms must share a feature to be recognised at all."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Knobs of the feature extractor (part of the model, and of the cache key)."""

    char_min: int = 1
    char_max: int = 3
    words: bool = True
    word_bigrams: bool = False
    english_stems: bool = True
    pinyin_bigrams: bool = True
    mask_digits: bool = False
    lexicon: bool = True
    signals: bool = True


def _lexicon_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation over all terms, longest first; ASCII terms must stand alone ("cma", not "acma")."""
    parts: list[str] = []
    for term in sorted(set(terms), key=lambda t: (-len(t), t)):
        escaped = re.escape(term)
        if _ASCII_TERM.fullmatch(term):
            escaped = rf"(?<![a-z0-9]){escaped}(?![a-z0-9])"
        parts.append(escaped)
    return re.compile("|".join(parts)) if parts else None


class LexiconMatcher:
    """Finds curated lexicon terms in canonical text and maps them to their labels."""

    def __init__(self, terms: Mapping[str, str]) -> None:
        self._labels: dict[str, str] = {}
        for term, label in terms.items():
            canon = normalize(term).text
            if canon:
                self._labels.setdefault(canon, label)
        self._pattern = _lexicon_pattern(self._labels)

    def __len__(self) -> int:
        return len(self._labels)

    def matches(self, text: str) -> list[tuple[str, str]]:
        """(term, label) for each non-overlapping hit, in order of appearance."""
        if self._pattern is None:
            return []
        return [(m.group(0), self._labels[m.group(0)]) for m in self._pattern.finditer(text)]

    def labels(self, text: str) -> list[str]:
        return [label for _, label in self.matches(text)]


def _length_bucket(n: int) -> str:
    for limit, name in ((2, "1-2"), (4, "3-4"), (8, "5-8"), (16, "9-16"), (40, "17-40")):
        if n <= limit:
            return name
    return "41+"


class Featurizer:
    """Canonical text → bag of named features (with counts)."""

    def __init__(self, lexicon: Lexicon, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        self.domain_lexicon = LexiconMatcher(lexicon.domain)
        self.act_lexicon = LexiconMatcher(lexicon.act)

    def _masked(self, text: str) -> str:
        """Replace identifiers by one placeholder character each, so their digits do not become
        n-grams that only ever match that one number."""
        if any(ch.isdigit() for ch in text):
            text = extract.CASE_NUMBER_RE.sub(_CASE_MARK, text)
            text = extract.CREDIT_CODE_RE.sub(_CODE_MARK, text)  # before mobiles: a code may hold 11 digits
            text = extract.MOBILE_RE.sub(_MOBILE_MARK, text)
            if self.config.mask_digits:
                text = _DIGITS.sub("0", text)
        return text

    def features(self, canonical: str) -> Counter[str]:
        """Features of an already-normalised text (see :func:`intents.normalize.normalize`)."""
        cfg = self.config
        text = canonical[:MAX_CHARS]
        masked = self._masked(text)
        feats: Counter[str] = Counter()
        padded = f"{_BOS}{masked}{_EOS}"
        for n in range(cfg.char_min, cfg.char_max + 1):
            source = masked if n == 1 else padded
            for i in range(len(source) - n + 1):
                gram = source[i : i + n]
                if gram.strip():
                    feats["c:" + gram] += 1
        if cfg.words:
            words = segment(masked)
            feats.update("w:" + w for w in words)
            if cfg.word_bigrams:
                feats.update(f"b:{a}|{b}" for a, b in itertools.pairwise(words))
        if cfg.english_stems:
            feats.update("e:" + english_stem(w) for w in _ENGLISH_WORD.findall(masked))
        if cfg.pinyin_bigrams:
            syllables = [PINYIN.get(ch) for ch in masked]
            feats.update(f"p:{a} {b}" for a, b in itertools.pairwise(syllables) if a and b)
        if cfg.lexicon:
            feats.update("ld:" + label for label in self.domain_lexicon.labels(text))
            feats.update("la:" + label for label in self.act_lexicon.labels(text))
        if cfg.signals:
            if _CASE_MARK in masked:
                feats["x:case"] += 1
            if _MOBILE_MARK in masked:
                feats["x:mobile"] += 1
            if _CODE_MARK in masked:
                feats["x:credit_code"] += 1
            if extract.rating_in_canonical(text) is not None:
                feats["x:rating"] += 1
            feats["len:" + _length_bucket(len(text))] += 1
        return feats
