"""Linear classifiers whose trained form is plain arrays.

scikit-learn does the fitting (a linear SVM); parsing does not go through scikit-learn at all. The
fitted model is exported to a vocabulary, an IDF vector, a weight matrix and a softmax
temperature, so that

* one message is scored by a dictionary lookup and a tiny dense product (microseconds; the
  scikit-learn transform/predict path costs close to a millisecond of validation overhead per call);
* the model is saved as ``.npz`` arrays loaded with ``allow_pickle=False``: no pickle, ever;
* probabilities are "calibrated-ish": the SVM margins go through a softmax whose temperature is
  fitted to minimise the log-loss of out-of-fold predictions (cheap, because the SVM trains in
  tens of milliseconds, and it makes a 0.6 mean roughly "right six times in ten").
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # training-only dependencies are imported lazily: loading from cache needs numpy alone
    from scipy import sparse

#: Relative weight of each feature family (prefix before the first colon).
DEFAULT_GROUP_WEIGHTS: Mapping[str, float] = {"c": 1.0, "w": 1.0, "e": 1.0, "p": 1.0, "ld": 1.0, "la": 1.0, "x": 1.0}
#: Families kept even when rare: they are designed, low-cardinality signals.
_ALWAYS_KEEP = ("ld", "la", "x", "len")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Hyper-parameters of one linear model (part of the cache key). Chosen by 5-fold
    cross-validation on the training files, not on the held-out set."""

    C: float = 1.0
    class_weight: str | None = "balanced"
    min_df: int = 1
    calibrate: bool = True
    folds: int = 5
    seed: int = 20260

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class DenseModel:
    """Linear scores over a dense vector (e.g. a sentence embedding) with a softmax temperature."""

    def __init__(self, classes: Sequence[str], weights: np.ndarray, bias: np.ndarray, temperature: float) -> None:
        self.classes: tuple[str, ...] = tuple(classes)
        # Held as float32, the storage format: a model read from the cache predicts exactly what
        # the freshly trained one did, and a serving worker holds half the bytes (the weight
        # matrices are the NLU's largest arrays: ~14 MB saved per worker). Every product below
        # has a float64 operand, so numpy widens the float32 values exactly and the arithmetic,
        # and thus every score, is what it was when the weights were held as float64.
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float64)
        self.temperature = float(temperature)
        if self.weights.shape[1] != len(self.classes) or self.bias.shape != (len(self.classes),):
            raise ValueError(f"weights {self.weights.shape} / bias {self.bias.shape} do not fit the classes")

    def logits_dense(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.weights + self.bias

    def proba_dense(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits_dense(x) / self.temperature)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Plain arrays (strings as fixed-width unicode) for ``np.savez``; no object arrays."""
        return {
            f"{prefix}classes": np.array(self.classes, dtype=np.str_),
            f"{prefix}weights": self.weights,
            f"{prefix}bias": self.bias,
            f"{prefix}temperature": np.array([self.temperature]),
        }

    @staticmethod
    def _common(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, object]:
        return {
            "classes": [str(c) for c in arrays[f"{prefix}classes"]],
            "weights": arrays[f"{prefix}weights"],
            "bias": arrays[f"{prefix}bias"],
            "temperature": float(arrays[f"{prefix}temperature"][0]),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> DenseModel:
        return cls(**cls._common(arrays, prefix))  # type: ignore[arg-type]


class LinearModel(DenseModel):
    """A :class:`DenseModel` over sub-linear TF-IDF weights of named features, L2-normalised."""

    def __init__(
        self,
        classes: Sequence[str],
        vocabulary: Sequence[str],
        idf: np.ndarray,
        weights: np.ndarray,
        bias: np.ndarray,
        temperature: float = 1.0,
    ) -> None:
        super().__init__(classes, weights, bias, temperature)
        self.vocabulary: tuple[str, ...] = tuple(vocabulary)
        self.index: dict[str, int] = {f: i for i, f in enumerate(self.vocabulary)}
        self.idf = np.ascontiguousarray(idf, dtype=np.float32)  # widened exactly in vectorize
        if self.weights.shape[0] != len(self.vocabulary) or self.idf.shape != (len(self.vocabulary),):
            raise ValueError("weights / idf do not fit the vocabulary")

    def vectorize(self, feats: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """Indices and L2-normalised TF-IDF values of the known features (unknown ones are dropped)."""
        idx: list[int] = []
        tf: list[float] = []
        for feat, count in feats.items():
            i = self.index.get(feat)
            if i is not None:
                idx.append(i)
                tf.append(1.0 + math.log(count))
        if not idx:
            return np.empty(0, dtype=np.intp), np.empty(0)
        ia = np.fromiter(idx, dtype=np.intp, count=len(idx))
        values = np.fromiter(tf, dtype=np.float64, count=len(tf)) * self.idf[ia]
        norm = float(np.sqrt(values @ values))
        return ia, values / norm if norm > 0 else values

    def logits(self, feats: Mapping[str, int]) -> np.ndarray:
        idx, values = self.vectorize(feats)
        if idx.size == 0:
            return self.bias.copy()
        return values @ self.weights[idx] + self.bias

    def proba(self, feats: Mapping[str, int]) -> np.ndarray:
        """Class probabilities (temperature-scaled softmax), in the order of :attr:`classes`."""
        return softmax(self.logits(feats) / self.temperature)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        arrays = super().to_arrays(prefix)
        arrays[f"{prefix}vocabulary"] = np.array(self.vocabulary, dtype=np.str_)
        arrays[f"{prefix}idf"] = self.idf
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> LinearModel:
        common = cls._common(arrays, prefix)
        return cls(
            vocabulary=[str(v) for v in arrays[f"{prefix}vocabulary"]],
            idf=arrays[f"{prefix}idf"],
            **common,  # type: ignore[arg-type]
        )


# ------------------------------------------------------------------------------------- training


def _group(feature: str) -> str:
    return feature.split(":", 1)[0]


def fit_vocabulary(
    bags: Sequence[Counter[str]], min_df: int = 1, group_weights: Mapping[str, float] = DEFAULT_GROUP_WEIGHTS
) -> tuple[list[str], np.ndarray]:
    """Sorted vocabulary (sorted, so training is deterministic) and smoothed IDF × family weight."""
    df: Counter[str] = Counter()
    for bag in bags:
        df.update(bag.keys())
    vocab = sorted(f for f, n in df.items() if n >= min_df or _group(f) in _ALWAYS_KEEP)
    n = len(bags)
    idf = np.array([(math.log((1 + n) / (1 + df[f])) + 1.0) * group_weights.get(_group(f), 1.0) for f in vocab])
    return vocab, idf


def tfidf_matrix(bags: Sequence[Counter[str]], index: Mapping[str, int], idf: np.ndarray) -> sparse.csr_matrix:
    """Rows of sub-linear TF-IDF, L2-normalised: the same arithmetic as :meth:`LinearModel.vectorize`."""
    from scipy import sparse

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for r, bag in enumerate(bags):
        for feat, count in bag.items():
            i = index.get(feat)
            if i is not None:
                rows.append(r)
                cols.append(i)
                vals.append((1.0 + math.log(count)) * idf[i])
    m = sparse.csr_matrix((vals, (rows, cols)), shape=(len(bags), len(index)))
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ m)


def _fit_svm(
    x: sparse.csr_matrix | np.ndarray, y: Sequence[str], cfg: TrainConfig
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One-vs-rest linear SVM → (classes, weights (n_features × n_classes), bias)."""
    from sklearn.svm import LinearSVC  # imported here: parsing a message never needs scikit-learn

    clf = LinearSVC(C=cfg.C, class_weight=cfg.class_weight, random_state=cfg.seed, max_iter=5000, dual=True)
    clf.fit(x, list(y))
    classes = [str(c) for c in clf.classes_]
    weights, bias = clf.coef_.T, np.asarray(clf.intercept_, dtype=np.float64)
    if len(classes) == 2:  # sklearn's binary form has one column: make it two symmetric ones
        weights = np.hstack([-weights / 2, weights / 2])
        bias = np.array([-bias[0] / 2, bias[0] / 2])
    return classes, weights, bias


def stratified_folds(y: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    """Deterministic stratified fold assignment (independent of library shuffling internals)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    labels = np.array(y)
    for label in sorted(set(y)):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        fold[members] = (np.arange(len(members)) + rng.integers(k)) % k
    return [np.flatnonzero(fold == f) for f in range(k)]


def out_of_fold_logits(
    x: sparse.csr_matrix | np.ndarray, y: Sequence[str], cfg: TrainConfig, classes: Sequence[str]
) -> np.ndarray:
    """Margins of each example from a model that did not see it (k-fold)."""
    class_index = {c: i for i, c in enumerate(classes)}
    logits = np.zeros((len(y), len(classes)))
    y_arr = np.array(y)

    def fold_logits(held: np.ndarray) -> np.ndarray:
        train_idx = np.setdiff1d(np.arange(len(y)), held)
        sub_classes, w, b = _fit_svm(x[train_idx], y_arr[train_idx].tolist(), cfg)
        cols = [class_index[c] for c in sub_classes]
        z = np.full((len(held), len(classes)), -30.0)
        z[:, cols] = x[held] @ w + b
        return z

    # liblinear releases the GIL, so the independent folds train in parallel on several cores;
    # each fold is seeded, so the result does not depend on the scheduling.
    folds = stratified_folds(y, cfg.folds, cfg.seed)
    with ThreadPoolExecutor(max_workers=max(1, min(len(folds), os.cpu_count() or 1))) as pool:
        for held, z in zip(folds, pool.map(fold_logits, folds), strict=True):
            logits[held] = z
    return logits


def fit_temperature(logits: np.ndarray, y_idx: np.ndarray) -> float:
    """Temperature minimising the mean negative log-likelihood (log grid, then a finer linear grid)."""

    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(y_idx)), y_idx].mean())

    grid = np.exp(np.linspace(np.log(0.02), np.log(5.0), 80))
    best = float(min(grid, key=nll))
    fine = np.linspace(best * 0.9, best * 1.1, 41)
    return float(min(fine, key=nll))


def _calibrated(
    x: sparse.csr_matrix | np.ndarray, labels: Sequence[str], cfg: TrainConfig
) -> tuple[list[str], np.ndarray, np.ndarray, float]:
    classes, weights, bias = _fit_svm(x, labels, cfg)
    temperature = 1.0
    smallest = min(Counter(labels).values())
    if cfg.calibrate and cfg.folds > 1 and smallest >= cfg.folds:
        oof = out_of_fold_logits(x, labels, replace(cfg, calibrate=False), classes)
        index = {c: i for i, c in enumerate(classes)}
        temperature = fit_temperature(oof, np.array([index[label] for label in labels]))
    return classes, weights, bias, temperature


def train(
    bags: Sequence[Counter[str]],
    labels: Sequence[str],
    cfg: TrainConfig | None = None,
    group_weights: Mapping[str, float] = DEFAULT_GROUP_WEIGHTS,
) -> LinearModel:
    """Fit vocabulary, IDF, SVM weights and a softmax temperature. Deterministic: sorted
    features, a seeded solver and seeded folds."""
    cfg = cfg or TrainConfig()
    vocab, idf = fit_vocabulary(bags, cfg.min_df, group_weights)
    x = tfidf_matrix(bags, {f: i for i, f in enumerate(vocab)}, idf)
    classes, weights, bias, temperature = _calibrated(x, labels, cfg)
    return LinearModel(classes, vocab, idf, weights, bias, temperature)


def train_dense(x: np.ndarray, labels: Sequence[str], cfg: TrainConfig | None = None) -> DenseModel:
    """The same recipe over dense vectors (sentence embeddings)."""
    cfg = cfg or TrainConfig()
    classes, weights, bias, temperature = _calibrated(np.asarray(x, dtype=np.float64), labels, cfg)
    return DenseModel(classes, weights, bias, temperature)
