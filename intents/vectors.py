"""Sentence vectors by text, computed once: shipped with the package, cached in the data directory.

Embedding a text costs 10–30 ms on this class of machine; the NLU's training set and the
knowledge base's phrasings are thousands of texts, minutes of work that no start-up should
repeat. Vectors are addressed by the SHA-256 of the text (after normalisation), so:

* a **shipped** file (``intents/data/vectors.npz``, ``knowledge/data/vectors.npz``; built with
  ``qibot vectors build``, checked in CI with ``qibot vectors check``) covers the bundled data;
* a **cache** in the data directory (a :class:`~intents.cache.SignedStore` bundle: that directory
  is writable by others, so only files this service signed are read) covers texts edited or
  added since, and a deployment's own knowledge directory;
* only texts in neither are embedded, once.

Vectors are stored as float16: a third of the memory, and cosines move by less than 0.001.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from intents.cache import SignedStore

log = logging.getLogger(__name__)

NLU_SHIPPED = Path(__file__).parent / "data" / "vectors.npz"
DIM = 384


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised vectors."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def text_key(text: str) -> str:
    """Content address of one text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def read_file(path: Path, model: str) -> dict[str, np.ndarray]:
    """Vectors of a shipped file when it is for ``model``; empty otherwise (logged)."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != model:
                log.info("vectors in %s are for %s, not %s: not used", path, data["model"], model)
                return {}
            return {str(k): v for k, v in zip(data["keys"], data["vectors"], strict=True)}
    except (OSError, KeyError, ValueError) as exc:
        log.warning("cannot read vectors from %s: %s", path, exc)
        return {}


def write_file(path: Path, model: str, vectors: dict[str, np.ndarray]) -> None:
    """Write a shipped vector file (sorted keys, float16, compressed), atomically."""
    keys = sorted(vectors)
    tmp = path.with_name(path.name + ".tmp.npz")
    stacked = np.stack([vectors[k] for k in keys]) if keys else np.zeros((0, DIM))
    np.savez_compressed(tmp, model=np.array(model), keys=np.array(keys, dtype=np.str_),
                        vectors=stacked.astype(np.float16))
    tmp.replace(path)


class VectorStore:
    """Known vectors (shipped files, then the signed cache bundle) and the embedding of the rest."""

    def __init__(
        self,
        model: str,
        shipped: Sequence[Path] = (),
        cache: SignedStore | None = None,
        bundle: str = "vectors",
    ) -> None:
        self.model = model
        self._cache = cache
        self._bundle = f"{bundle}-{hashlib.sha256(model.encode()).hexdigest()[:12]}"
        self._known: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        for path in shipped:
            self._known.update(read_file(path, model))
        self._cached: set[str] = set()
        if cache is not None:
            arrays = cache.load(self._bundle)
            if arrays is not None and "keys" in arrays and "vectors" in arrays:
                for k, v in zip(arrays["keys"], arrays["vectors"], strict=True):
                    self._known.setdefault(str(k), v)
                    self._cached.add(str(k))

    def __len__(self) -> int:
        return len(self._known)

    def knows(self, text: str) -> bool:
        return text_key(text) in self._known

    def known(self) -> dict[str, np.ndarray]:
        return dict(self._known)

    def lookup(self, text: str) -> np.ndarray | None:
        """The vector of a known text (float32), without embedding anything."""
        v = self._known.get(text_key(text))
        return None if v is None else v.astype(np.float32)

    def vectors(self, texts: Sequence[str], embedder: Embedder | None) -> np.ndarray:
        """Vectors of the texts (float32, one row each), embedding and caching those not known.
        Without an embedder, unknown texts get zero rows: they then match nothing."""
        keys = [text_key(t) for t in texts]
        with self._lock:
            missing = sorted({t for t, k in zip(texts, keys, strict=True) if k not in self._known})
            if missing and embedder is not None:
                if len(missing) > 1:
                    log.info("embedding %d texts that no vector file covers", len(missing))
                for t, v in zip(missing, embedder.embed(missing), strict=True):
                    self._known[text_key(t)] = np.asarray(v, dtype=np.float16)
                self._save({text_key(t) for t in missing})
            zero = np.zeros(DIM, dtype=np.float16)
            rows = [self._known.get(k, zero) for k in keys]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, DIM), dtype=np.float32)

    def _save(self, fresh: set[str]) -> None:
        """Add what was embedded to the signed cache bundle (the shipped files are not copied)."""
        if self._cache is None:
            return
        self._cached |= fresh
        keys = sorted(self._cached)
        try:
            self._cache.save(
                self._bundle,
                {"keys": np.array(keys, dtype=np.str_),
                 "vectors": np.stack([self._known[k] for k in keys]).astype(np.float16)},
            )
        except OSError as exc:
            log.warning("cannot write the vector cache: %s", exc)
