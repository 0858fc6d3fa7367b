"""Match features between a query and a candidate entry, for re-ranking and calibration.

BM25 finds candidates, but its raw score grows with query length and cannot say whether the
best entry is right or merely the least wrong. These features are bounded and comparable across
queries, so one fitted model (``calibration``) can turn them into probabilities:

* ``bm25``       word BM25F score over the best score the query's words could reach;
* ``chars``      character BM25 over the best score the query's characters could reach
                 (evidence when the words differ but the characters do not: "校一下" / "校准");
* ``fuzzy``      rapidfuzz similarity of characters with the closest phrasing (question-level
                 closeness, robust to segmentation differences);
* ``code_hit`` / ``code_miss``  the query names a code and the entry does / does not carry it.

Term-overlap features (idf-weighted coverage of the query by the entry, and overlap with the best
single phrasing) were measured too: with them the fitted weights went to zero, as BM25 and
fuzzy already carry that information, so they were dropped to keep queries fast.

Not a candidate feature but a query one: ``Query.unknown_share``, the share of the query's idf
mass in words the KB has never seen; the fit may use it to make "none" likelier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

FEATURES: tuple[str, ...] = ("bm25", "chars", "fuzzy", "code_hit", "code_miss")
MAX_RATIO = 1.5  # BM25 over its ceiling can exceed 1 when a term repeats across fields


@dataclass(frozen=True, slots=True)
class Phrasings:
    """Per-entry phrasing data precomputed at index time, in flat arrays (compact at 50k entries)."""

    texts: list[str]  # canonical text of every phrasing, all entries, flat
    offsets: np.ndarray  # entry i owns phrasings offsets[i]:offsets[i+1]
    codes: dict[int, frozenset[str]]  # code bases of the entries that carry any


@dataclass(frozen=True, slots=True)
class Query:
    """What the features need to know about the query."""

    text: str
    term_ids: list[int]
    total: float  # idf mass of all query words, unknown ones included
    unknown: float  # idf mass of unknown words
    codes: frozenset[str]
    char_ids: list[int] = field(default_factory=list)  # known characters (character index ids)
    char_total: float = 0.0  # idf mass of the known characters

    @property
    def unknown_share(self) -> float:
        return self.unknown / self.total if self.total else 1.0


def compute(
    query: Query,
    candidates: Sequence[int] | np.ndarray,
    bm25: np.ndarray,
    char_bm25: np.ndarray,
    phrasings: Phrasings,
    k1: float,
    char_k1: float,
) -> np.ndarray:
    """Feature matrix (len(candidates) × len(FEATURES)) for the candidate entries."""
    out = np.zeros((len(candidates), len(FEATURES)), dtype=np.float64)
    if not len(candidates):
        return out
    word_ceiling = query.total * (k1 + 1.0)
    char_ceiling = query.char_total * (char_k1 + 1.0)
    if word_ceiling > 0:
        out[:, 0] = np.minimum(bm25 / word_ceiling, MAX_RATIO)
    if char_ceiling > 0:
        out[:, 1] = np.minimum(char_bm25 / char_ceiling, MAX_RATIO)
    offsets = phrasings.offsets
    spans = [(int(offsets[c]), int(offsets[c + 1])) for c in candidates]
    texts = [phrasings.texts[i] for lo, hi in spans for i in range(lo, hi)]
    similarity = process.cdist([query.text], texts, scorer=fuzz.ratio, dtype=np.uint8, workers=1)[0]
    pos = 0
    for row, (c, (lo, hi)) in enumerate(zip(candidates, spans, strict=True)):
        n = hi - lo
        out[row, 2] = float(similarity[pos : pos + n].max()) / 100.0 if n else 0.0
        pos += n
        if query.codes:
            hit = len(query.codes & phrasings.codes.get(int(c), frozenset())) / len(query.codes)
            out[row, 3], out[row, 4] = hit, float(hit == 0.0)
    return out
