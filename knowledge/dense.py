"""Sentence-embedding evidence for retrieval: which entries a question *means*, when its words differ.

Lexical matching cannot connect "收银台那几台电子秤是不是每年都得找人来检一下" with "电子秤要不要强制
检定", nor an English question with Chinese entries. A multilingual sentence encoder
(multilingual-e5-small, see ``intents.embed``) can. It is consulted only when the lexical ranking
is not already confident (a query embedding costs 10–30 ms; the lexical path ~1 ms), and its
similarities enter the same calibrated softmax as the lexical features (``retriever``), so a
dense match never answers on its own unless it is strong.

What is embedded per entry: every phrasing (title and questions) and every sentence of the answer
(a question about one detail is often closest to the sentence that states it). Vectors are
addressed by their text (``intents.vectors``): a shipped file covers the bundled content
(``data/vectors.npz``), the signed cache in the data directory covers edits, and only texts in
neither are embedded when an index is built.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from intents.vectors import Embedder, VectorStore
from knowledge.analysis import Analyzed
from knowledge.entries import Entry

log = logging.getLogger(__name__)

SHIPPED_VECTORS = Path(__file__).parent / "data" / "vectors.npz"
_SENTENCE_END = re.compile(r"(?<=[。；！？;!?])")
MIN_SENTENCE = 8  # shorter fragments ("例如：") say nothing on their own


def sentences(answer: str) -> list[str]:
    """The sentences of an answer worth embedding on their own."""
    parts = (p.strip() for p in _SENTENCE_END.split(answer))
    return [p for p in parts if len(p) >= MIN_SENTENCE]


class DenseIndex:
    """Per-entry texts as vectors; ``scores`` gives each entry's best cosine to a query vector,
    separately for its phrasings and its answer sentences."""

    def __init__(self, phrasing_vectors: np.ndarray, phrasing_owner: np.ndarray,
                 answer_vectors: np.ndarray, answer_owner: np.ndarray, n_entries: int) -> None:
        self._p, self._p_owner = phrasing_vectors, phrasing_owner
        self._a, self._a_owner = answer_vectors, answer_owner
        self.n_entries = n_entries
        self._p_runs, self._a_runs = _runs(phrasing_owner), _runs(answer_owner)

    @classmethod
    def build(cls, phrasings: Sequence[Sequence[str]], answers: Sequence[Sequence[str]],
              store: VectorStore, embedder: Embedder | None) -> DenseIndex:
        p_texts = [t for group in phrasings for t in group]
        a_texts = [t for group in answers for t in group]
        vectors = store.vectors(p_texts + a_texts, embedder)
        p_owner = np.repeat(np.arange(len(phrasings)), [len(g) for g in phrasings])
        a_owner = np.repeat(np.arange(len(answers)), [len(g) for g in answers])
        return cls(vectors[: len(p_texts)], p_owner, vectors[len(p_texts):], a_owner, len(phrasings))

    @property
    def nbytes(self) -> int:
        return int(self._p.nbytes + self._a.nbytes + self._p_owner.nbytes + self._a_owner.nbytes)

    def scores(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(best phrasing cosine, best answer-sentence cosine) of every entry; 0 where none."""
        return (self._best(self._p @ query, self._p_owner, self._p_runs),
                self._best(self._a @ query, self._a_owner, self._a_runs))

    def _best(self, sims: np.ndarray, owner: np.ndarray, runs: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        out = np.zeros(self.n_entries, dtype=np.float64)
        if not len(sims):
            return out
        if runs is None:
            np.maximum.at(out, owner, sims)
            return out
        # Each entry's texts are one run of rows (``build``): one max per run is the same
        # maximum as ``np.maximum.at`` (max is exact), at a fraction of its cost per query.
        present, starts = runs
        out[present] = np.maximum(np.maximum.reduceat(sims, starts), 0.0)
        return out


def _runs(owner: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The entries that own rows and where each one's run of rows starts, when the owners are
    sorted (as ``build`` lays them out); None otherwise."""
    if not len(owner) or (np.diff(owner) < 0).any():
        return None
    present, starts = np.unique(owner, return_index=True)
    return present, starts


def entry_texts(entries: Sequence[Entry], analyze: Callable[[str], Analyzed]) -> list[str]:
    """Every text the dense index embeds (phrasings and answer sentences), in the analysed form
    the index uses: what the shipped vector file must cover."""
    out: list[str] = []
    for e in entries:
        out.extend(analyze(p).text for p in e.phrasings)
        out.extend(analyze(s).text for s in sentences(e.answer))
    return out
