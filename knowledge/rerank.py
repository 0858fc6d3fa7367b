"""Re-ranking of the first candidates, reading the whole question against each entry.

The ranking softmax (``calibration``) scores each candidate by a few match features that were
chosen to be cheap over every BM25 candidate: BM25 ratios and the character similarity to the
closest phrasing *as a whole*. When the user's message is longer than any phrasing (context, a
detail, an aside), the whole-string similarity is low for every entry and the order among the
first few is decided by BM25 alone; the right entry is then often second or third, so the bot
offers "您是不是想问" where it could have answered.

This model re-orders only the first ``TOP`` candidates, so it can afford features that compare
the question with each entry's texts more closely:

* ``partial``     the best alignment of the shorter of question and phrasing inside the longer
                  (rapidfuzz ``partial_ratio``): a phrasing said inside a long message scores high;
* ``answer``      the same alignment of the question inside the entry's answer: a question on one
                  detail the answer states ("宽展期多久") matches where it is stated;
* ``title``       the alignment with the entry's title alone;
* the stage's own match features and the candidate's logit behind the first one;
* the alignments times the question's length (they matter more the longer it is).

It is a pairwise logistic model (the right candidate against each other one, fitted by
``knowledge.fit`` on grouped folds), stored as plain weights: a query costs about ``TOP`` × the
entry's phrasings alignments (well under a millisecond) and one dot product per candidate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz

TOP = 5  # candidates re-ordered; the rest keep the softmax's order
ANSWER_CHARS = 400  # the head of an answer the question is aligned with (cost bound)
TEXT_FEATURES = ("partial", "answer", "title")


def feature_names(match_features: tuple[str, ...]) -> tuple[str, ...]:
    """Names of the re-ranking features of one candidate for a stage with these match features."""
    return (
        *match_features,
        "logit_behind",
        *TEXT_FEATURES,
        *(f"{f}_x_length" for f in TEXT_FEATURES),
        "fuzzy_x_length",
    )


def candidate_features(
    query: str,
    match_rows: np.ndarray,
    logits: np.ndarray,
    phrasings: Sequence[Sequence[str]],
    answers: Sequence[str],
    titles: Sequence[str],
    match_features: tuple[str, ...],
) -> np.ndarray:
    """Features (n × names) of the first n candidates (best first by the softmax), given each
    one's phrasing texts (canonical form, as the index holds them), answer and title."""
    n = len(logits)
    length = math.log1p(len(query))
    fuzzy_col = match_features.index("fuzzy") if "fuzzy" in match_features else None
    rows = []
    for j in range(n):
        partial = max((fuzz.partial_ratio(query, p) for p in phrasings[j] if p), default=0.0) / 100.0
        answer = fuzz.partial_ratio(query, answers[j][:ANSWER_CHARS]) / 100.0 if answers[j] else 0.0
        title = fuzz.partial_ratio(query, titles[j]) / 100.0 if titles[j] else 0.0
        fuzzy = float(match_rows[j, fuzzy_col]) if fuzzy_col is not None else 0.0
        rows.append([
            *match_rows[j].tolist(),
            float(logits[j] - logits[0]),
            partial, answer, title,
            partial * length, answer * length, title * length,
            fuzzy * length,
        ])
    return np.asarray(rows, dtype=np.float64).reshape(n, len(feature_names(match_features)))


@dataclass(frozen=True, slots=True)
class Reranker:
    """A linear score over the standardised candidate features (higher is better)."""

    names: tuple[str, ...]
    scale: np.ndarray
    coef: np.ndarray

    def scores(self, x: np.ndarray) -> np.ndarray:
        return np.asarray((x / self.scale) @ self.coef, dtype=np.float64)

    def order(self, x: np.ndarray) -> np.ndarray:
        """The new order of the candidates (stable: ties keep the softmax's order)."""
        return np.argsort(-self.scores(x), kind="stable")

    @staticmethod
    def confidence(scores: np.ndarray) -> tuple[float, float]:
        """(share of the best re-ranking score in a softmax over the candidates, its margin over
        the second): how sure the re-ranker is of its first; read by the decision model."""
        if not len(scores):
            return 0.0, 0.0
        s = np.sort(scores)[::-1]
        e = np.exp(s - s[0])
        margin = float(min(s[0] - s[1], 10.0)) if len(s) > 1 else 10.0
        return float(e[0] / e.sum()), margin


__all__ = ["TOP", "Reranker", "candidate_features", "feature_names"]
