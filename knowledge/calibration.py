"""The fitted combination of match features into probabilities, and the outcome thresholds.

One conditional-logit (softmax) model, fitted offline by ``knowledge.fit`` on the entries' own
phrasings and stored as JSON beside the content, so the hot path is a dot product:

    logit(candidate) = weights · features(candidate)
    logit(none)      = null_bias + null_unknown · (share of the query the KB has never seen)
    P(candidate)     = exp(logit) / (exp(logit(none)) + Σ exp(logit(every candidate)))

Candidates compete with each other *and* with "none of these": two near-equal candidates split
the probability (an ambiguous question gets choices, not an answer), and a lone weak candidate
loses to "none" (an off-topic question gets no answer). The thresholds turn P(top candidate)
into the three outcomes the dialogue uses.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from knowledge.features import FEATURES

CALIBRATION_FILE = Path(__file__).parent / "data" / "calibration.json"
#: The model used when sentence embeddings were consulted: the lexical features plus the best
#: cosine of the query to the entry's phrasings and to its answer sentences.
DENSE_CALIBRATION_FILE = Path(__file__).parent / "data" / "calibration_dense.json"
DENSE_FEATURES: tuple[str, ...] = (*FEATURES, "dense", "dense_answer")


@dataclass(frozen=True, slots=True)
class Calibration:
    """Weights of the softmax model and the outcome thresholds."""

    features: tuple[str, ...] = FEATURES
    weights: tuple[float, ...] = (14.0, 3.4, 3.8, 1.2, -0.1)
    null_bias: float = 7.4  # logit of "none of these" for a query made of known words
    null_unknown: float = 0.0  # added per unit share of unknown words
    answer: float = 0.65  # P(top) needed to answer outright
    suggest: float = 0.2  # P(candidate) needed to be offered as a choice
    notes: dict[str, object] = field(default_factory=dict)

    @classmethod
    def default_for(cls, features: tuple[str, ...]) -> Calibration:
        """Unfitted weights for a feature set that extends the lexical one (extra features start at
        a modest positive weight); used until ``knowledge.fit`` has fitted it."""
        base = dict(zip(FEATURES, cls().weights, strict=True))
        return cls(features=features, weights=tuple(base.get(f, 4.0) for f in features))

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Logit of every candidate row."""
        if features.size == 0:
            return np.zeros(0)
        return features @ np.asarray(self.weights)

    def null_logit(self, unknown: float) -> float:
        return self.null_bias + self.null_unknown * unknown

    def probabilities(self, logits: np.ndarray, unknown: float) -> np.ndarray:
        """P(each candidate is the right entry); the rest of the mass is "none of these"."""
        if logits.size == 0:
            return np.zeros(0)
        null = self.null_logit(unknown)
        top = max(float(logits.max()), null)
        e = np.exp(logits - top)
        return e / (np.exp(null - top) + e.sum())

    def save(self, path: Path | str = CALIBRATION_FILE) -> None:
        data = asdict(self)
        data["features"] = list(self.features)
        data["weights"] = [round(w, 4) for w in self.weights]
        data["null_bias"] = round(self.null_bias, 4)
        data["null_unknown"] = round(self.null_unknown, 4)
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str | None = None, features: tuple[str, ...] = FEATURES) -> Calibration:
        """The fitted calibration; defaults when none was fitted or it is for other features."""
        file = Path(path) if path is not None else CALIBRATION_FILE
        if not file.exists() or features != FEATURES:
            default = cls() if features == FEATURES else cls.default_for(features)
            if not file.exists():
                return default
        else:
            default = cls()
        data = json.loads(file.read_text(encoding="utf-8"))
        if tuple(data.get("features", ())) != features or "null_bias" not in data:
            return default
        return cls(
            features=tuple(data["features"]),
            weights=tuple(float(w) for w in data["weights"]),
            null_bias=float(data["null_bias"]),
            null_unknown=float(data["null_unknown"]),
            answer=float(data["answer"]),
            suggest=float(data["suggest"]),
            notes=dict(data.get("notes", {})),
        )
