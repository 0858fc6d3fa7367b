"""Whether to answer outright: a calibrated probability that the top-ranked entry is right.

The ranking softmax (``calibration``) orders the candidates well, but its P(top) judges *whether*
the first one is right from the candidates' scores alone. A long message with context scores low
against every entry's short phrasings even when its entry is clearly first, so the softmax almost
never answered one (2.8 % of the long questions in the grouped folds, against 52 % ranked right).

This model reads the whole ranked list of one query: the softmax probabilities of the first two
and of "none", the logit margin, the first candidate's match features and their margins over the
best other, whether each single signal (words, characters, closest phrasing, meaning) agrees on
the first candidate, the share of the question unknown to the knowledge base, its length and
script, and the interactions of length and script with the softmax's confidence. It is a logistic
regression (scikit-learn, fitted offline by ``knowledge.fit`` on the entries' own phrasings,
grouped by question position so every choice is judged on questions it was not fitted on),
stored as plain arrays so a query costs one dot product.

Two stages, as the retriever runs them: ``lexical`` on the word ranking; ``dense`` on the ranking
with sentence-embedding features, consulted only when the lexical stage does not answer. Each has
its own threshold, chosen on the folds' out-of-fold probabilities; ``lexical_alone`` is the lexical
model with the threshold chosen for an index without sentence embeddings (no second stage).

The shipped file carries a key of the code and calibrations it depends on; a test fails when it
is stale (``qibot kb fit``). Content edits do not make it stale: like the softmax calibration it
judges match features, not entries.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge import rerank
from knowledge.rerank import Reranker

DECISION_FILE = Path(__file__).parent / "data" / "decision.npz"
STAGES = ("lexical", "lexical_alone", "dense", "dense_latin")
MARGIN_CAP = 10.0
QUERY_FEATURES = (
    "p1", "p2", "p_none", "logit_margin", "unknown", "length", "terms", "candidates",
    "latin", "p1_x_length", "margin_x_length", "p1_x_latin",
)
# How sure the re-ranker (``knowledge.rerank``) is of its first, and whether it moved another
# candidate first; zeros when no re-ranker ran.
RERANK_FEATURES = ("rr_p1", "rr_margin", "rr_moved")
AGREE = ("bm25", "chars", "fuzzy", "dense", "dense_answer")
_CJK = re.compile(r"[\u3400-\u9fff]")


def feature_names(match_features: tuple[str, ...]) -> tuple[str, ...]:
    """Names of the decision features for a ranking with the given match features."""
    return (
        *QUERY_FEATURES,
        *RERANK_FEATURES,
        *(f"top_{f}" for f in match_features),
        *(f"margin_{f}" for f in match_features),
        *(f"agree_{f}" for f in AGREE if f in match_features),
    )


def features(
    features_sorted: np.ndarray,
    logits: np.ndarray,
    probabilities: np.ndarray,
    unknown: float,
    text: str,
    n_terms: int,
    match_features: tuple[str, ...],
    rerank: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """The decision features of one ranked query (candidates best first, ``text`` analysed;
    ``rerank``: the re-ranker's confidence, margin and whether it changed the first)."""
    n = len(logits)
    d = len(match_features)
    p1 = float(probabilities[0]) if n else 0.0
    p2 = float(probabilities[1]) if n > 1 else 0.0
    p_none = 1.0 - float(probabilities.sum()) if n else 1.0
    margin = min(float(logits[0] - logits[1]), MARGIN_CAP) if n > 1 else MARGIN_CAP
    length = math.log1p(len(text))
    latin = 0.0 if _CJK.search(text) else 1.0
    head = [
        p1, p2, p_none, margin, unknown, length, math.log1p(n_terms), math.log1p(n),
        latin, p1 * length, margin * length, p1 * latin, *rerank,
    ]
    agree_cols = [match_features.index(f) for f in AGREE if f in match_features]
    if n == 0:
        return np.asarray([*head, *([0.0] * (2 * d + len(agree_cols)))], dtype=np.float64)
    top = features_sorted[0]
    others = features_sorted[1:].max(axis=0) if n > 1 else np.zeros(d)
    agree = [float(top[c] >= features_sorted[:, c].max()) for c in agree_cols]
    return np.asarray([*head, *top.tolist(), *(top - others).tolist(), *agree], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class StageModel:
    """A standardised logistic regression and the P(right) needed to answer outright."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    answer: float

    def probability(self, x: np.ndarray) -> float:
        z = float(((x - self.mean) / self.scale) @ self.coef + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


@dataclass(frozen=True, slots=True)
class Decision:
    """The stage models and the key of what they were fitted with."""

    stages: dict[str, StageModel]
    key: str
    # Per stage: the re-ranker of its first candidates, and the coverage model (P(the KB has an
    # entry for the question), with ``answer`` the P it needs before anything is answered outright).
    rerankers: dict[str, Reranker] = field(default_factory=dict)
    covers: dict[str, StageModel] = field(default_factory=dict)

    def get(self, stage: str, match_features: tuple[str, ...]) -> StageModel | None:
        """The stage's model when it was fitted for these match features, else None."""
        model = self.stages.get(stage)
        return model if model is not None and model.names == feature_names(match_features) else None

    def cover(self, stage: str, match_features: tuple[str, ...]) -> StageModel | None:
        """The stage's coverage model when it was fitted for these match features, else None."""
        model = self.covers.get(stage)
        return model if model is not None and model.names == feature_names(match_features) else None

    def reranker(self, stage: str, match_features: tuple[str, ...]) -> Reranker | None:
        """The stage's re-ranker when it was fitted for these match features, else None."""
        model = self.rerankers.get(stage)
        return model if model is not None and model.names == rerank.feature_names(match_features) else None

    def save(self, path: Path | str = DECISION_FILE) -> None:
        arrays: dict[str, np.ndarray] = {"key": np.asarray(self.key)}
        for name, r in self.rerankers.items():
            arrays[f"rerank.{name}.names"] = np.asarray(r.names)
            arrays[f"rerank.{name}.scale"] = r.scale
            arrays[f"rerank.{name}.coef"] = r.coef
        models = {**self.stages, **{f"cover.{k}": v for k, v in self.covers.items()}}
        for name, m in models.items():
            arrays[f"{name}.names"] = np.asarray(m.names)
            arrays[f"{name}.mean"] = m.mean
            arrays[f"{name}.scale"] = m.scale
            arrays[f"{name}.coef"] = m.coef
            arrays[f"{name}.intercept"] = np.asarray(m.intercept)
            arrays[f"{name}.answer"] = np.asarray(m.answer)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path | str | None = None) -> Decision | None:
        """The shipped (or given) model; None when there is none (the softmax threshold decides)."""
        file = Path(path) if path is not None else DECISION_FILE
        if not file.exists():
            return None
        with np.load(file, allow_pickle=False) as data:

            def stage(name: str) -> StageModel:
                return StageModel(
                    names=tuple(str(x) for x in data[f"{name}.names"]),
                    mean=np.asarray(data[f"{name}.mean"], dtype=np.float64),
                    scale=np.asarray(data[f"{name}.scale"], dtype=np.float64),
                    coef=np.asarray(data[f"{name}.coef"], dtype=np.float64),
                    intercept=float(data[f"{name}.intercept"]),
                    answer=float(data[f"{name}.answer"]),
                )

            stages = {name: stage(name) for name in STAGES if f"{name}.coef" in data}
            covers = {name: stage(f"cover.{name}") for name in STAGES if f"cover.{name}.coef" in data}
            rerankers = {
                name: Reranker(
                    names=tuple(str(x) for x in data[f"rerank.{name}.names"]),
                    scale=np.asarray(data[f"rerank.{name}.scale"], dtype=np.float64),
                    coef=np.asarray(data[f"rerank.{name}.coef"], dtype=np.float64),
                )
                for name in STAGES
                if f"rerank.{name}.coef" in data
            }
            return cls(stages, str(data["key"]), rerankers, covers)


def key_files() -> list[Path]:
    """What a fitted decision model depends on: the softmax calibrations it reads the output of,
    and the code that computes the match and decision features."""
    here = Path(__file__).parent
    files = [here / "data" / "calibration.json", here / "data" / "calibration_dense.json"]
    return [*files, here / "decision.py", here / "features.py", here / "rerank.py"]


def current_key() -> str:
    h = hashlib.sha256()
    for f in key_files():
        h.update(f.name.encode())
        h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()[:16]


__all__ = ["DECISION_FILE", "Decision", "StageModel", "current_key", "feature_names", "features"]
