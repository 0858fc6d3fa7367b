"""Sentence-embedding evidence for retrieval: which entries a question *means*, when its words differ.

Lexical matching cannot connect "收银台那几台电子秤是不是每年都得找人来检一下" with "电子秤要不要强制
检定", nor an English question with Chinese entries. A multilingual sentence encoder
(multilingual-e5-small, see ``intents.embed``) can. It is consulted only when the lexical ranking
is not already confident (a query embedding costs 10–30 ms; the lexical path ~1 ms), and its
similarities enter the same calibrated softmax as the lexical features (``retriever``), so a
dense match never answers on its own unless it is strong.

What is embedded per entry: every phrasing (title and questions) and every sentence of the answer
(a question about one detail is often closest to the sentence that states it). Vectors are
addressed by the SHA-256 of the text, so they are computed once: a shipped file covers the
bundled content (``data/vectors.npz``), a cache file in the data directory covers edits, and only
texts in neither are embedded when an index is built.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

SHIPPED_VECTORS = Path(__file__).parent / "data" / "vectors.npz"
_SENTENCE_END = re.compile(r"(?<=[。；！？;!?])")
MIN_SENTENCE = 8  # shorter fragments ("例如：") say nothing on their own


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised vectors (``intents.embed.Embedder``)."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def sentences(answer: str) -> list[str]:
    """The sentences of an answer worth embedding on their own."""
    parts = (p.strip() for p in _SENTENCE_END.split(answer))
    return [p for p in parts if len(p) >= MIN_SENTENCE]


class VectorStore:
    """Vectors by text key: the shipped file (read-only) plus an optional writable cache file.

    Both files are ``.npz`` with ``model`` (the embedder's name), ``keys`` and ``vectors``
    (float16: a third of the memory, and cosine similarities change by < 0.001)."""

    def __init__(self, model: str, files: Sequence[Path], cache_file: Path | None = None) -> None:
        self.model = model
        self.cache_file = cache_file
        self._known: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        for path in [*files, *([cache_file] if cache_file else [])]:
            self._read(path)

    def _read(self, path: Path) -> None:
        if not path.exists():
            return
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["model"]) != self.model:
                    log.info("vectors in %s are for %s, not %s: ignored", path, data["model"], self.model)
                    return
                for k, v in zip(data["keys"], data["vectors"], strict=True):
                    self._known[str(k)] = v
        except (OSError, KeyError, ValueError) as exc:
            log.warning("cannot read vectors from %s: %s", path, exc)

    def __len__(self) -> int:
        return len(self._known)

    def knows(self, text: str) -> bool:
        return text_key(text) in self._known

    def vectors(self, texts: Sequence[str], embedder: Embedder | None) -> np.ndarray:
        """Vectors of the texts (float32), embedding and caching those not known yet.
        Without an embedder, unknown texts get zero vectors (they then match nothing)."""
        keys = [text_key(t) for t in texts]
        with self._lock:
            missing = sorted({t for t, k in zip(texts, keys, strict=True) if k not in self._known})
            if missing and embedder is not None:
                log.info("embedding %d knowledge texts not in the vector files", len(missing))
                fresh = embedder.embed(missing).astype(np.float16)
                for t, v in zip(missing, fresh, strict=True):
                    self._known[text_key(t)] = v
                self._save()
            dim = next(iter(self._known.values())).shape[0] if self._known else 384
            zero = np.zeros(dim, dtype=np.float16)
            return np.stack([self._known.get(k, zero) for k in keys]).astype(np.float32) if keys else np.zeros((0, dim))

    def _save(self) -> None:
        if self.cache_file is None:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            save(self.cache_file, self.model, self._known)
        except OSError as exc:
            log.warning("cannot write the vector cache %s: %s", self.cache_file, exc)


def save(path: Path, model: str, vectors: dict[str, np.ndarray]) -> None:
    keys = sorted(vectors)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        model=np.array(model),
        keys=np.array(keys, dtype=np.str_),
        vectors=np.stack([vectors[k] for k in keys]).astype(np.float16) if keys else np.zeros((0, 384), np.float16),
    )
    tmp.replace(path)


class DenseIndex:
    """Per-entry texts as vectors; ``scores`` gives each entry's best cosine to a query vector,
    separately for its phrasings and its answer sentences."""

    def __init__(self, phrasing_vectors: np.ndarray, phrasing_owner: np.ndarray,
                 answer_vectors: np.ndarray, answer_owner: np.ndarray, n_entries: int) -> None:
        self._p, self._p_owner = phrasing_vectors, phrasing_owner
        self._a, self._a_owner = answer_vectors, answer_owner
        self.n_entries = n_entries

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
        return self._best(self._p @ query, self._p_owner), self._best(self._a @ query, self._a_owner)

    def _best(self, sims: np.ndarray, owner: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n_entries, dtype=np.float64)
        if len(sims):
            np.maximum.at(out, owner, sims)
        return out


def entry_texts(kb_entries: Sequence[object], analyze: object) -> list[str]:
    """Every text of the entries that the dense index embeds (phrasings and answer sentences),
    in the analysed form the index uses: what the shipped vector file must cover."""
    out: list[str] = []
    for e in kb_entries:
        out.extend(analyze(p).text for p in e.phrasings)  # type: ignore[attr-defined,operator]
        out.extend(analyze(s).text for s in sentences(e.answer))  # type: ignore[attr-defined,operator]
    return out
