"""The knowledge base as a service: the current index and validated reloads.

No database here (the gap log is :mod:`bot.services.kb_gaps`): ``qibot ask`` builds its knowledge
base with :func:`dense_options` and must not pay for importing SQLAlchemy."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from bot import metrics
from intents import embed
from intents.cache import SignedStore
from intents.vectors import VectorStore
from knowledge.dense import SHIPPED_VECTORS
from knowledge.overlay import Overlay
from knowledge.retriever import KnowledgeBase, KnowledgeBaseError, SearchResult

log = logging.getLogger(__name__)


def dense_options(cache_dir: Path | None, embeddings: bool | None = None) -> dict[str, Any]:
    """The ``embedder`` and ``vectors`` a knowledge base needs to match by meaning, or nothing
    when embeddings are off or unavailable (``qibot ask`` uses this too, to answer as the bot)."""
    if not embed.embeddings_wanted(embeddings) or (embedder := embed.load_embedder()) is None:
        return {}
    cache = SignedStore(cache_dir) if cache_dir is not None else None
    return {"embedder": embedder, "vectors": VectorStore(embedder.name, [SHIPPED_VECTORS], cache, bundle="kb-vectors")}


class KnowledgeService:
    """Holds the index in use. A reload builds the new index completely and swaps it in only
    when it loaded cleanly, so a broken content file never replaces a working knowledge base.

    The index is the content files with the console's edits laid over them (``overlay``, see
    ``knowledge.overlay``; kept in the database and applied by ``bot.services.kb_edits``), at
    ``version``: a worker applies a newer version of the edits, never an older one.

    With sentence embeddings (``embeddings``: None follows ``QIBOT_EMBEDDINGS``), questions the
    lexical ranking is unsure of are also matched by meaning; vectors of the bundled content are
    shipped, those of edited or local content are embedded once into ``cache_dir``. Likewise the
    analysis of the content texts (``knowledge.memo``): shipped for the bundled content, made once
    and kept in ``cache_dir`` for edited or local content, so starts and reloads skip it.

    Building an index takes a few tenths of a second: callers on an event loop run ``reload`` and
    ``apply`` in a thread (``asyncio.to_thread``); searches meanwhile use the old index."""

    def __init__(
        self, directory: Path | None = None, cache_dir: Path | None = None, embeddings: bool | None = None
    ) -> None:
        self._directory = directory
        self._lock = threading.Lock()
        self._dense = dense_options(cache_dir, embeddings)
        self._cache = SignedStore(cache_dir) if cache_dir is not None else None
        self._overlay: Overlay = {}
        self._version = 0
        self._kb = KnowledgeBase.load(directory, cache=self._cache, **self._dense)

    @property
    def kb(self) -> KnowledgeBase:
        return self._kb

    @property
    def version(self) -> int:
        """The version of the console's edits the index includes (0: none)."""
        return self._version

    @property
    def directory(self) -> Path | None:
        return self._directory

    def reload(self) -> int:
        """Rebuild from the content files (and the edits already applied); raises
        KnowledgeBaseError and keeps the old index when the new content is broken. Returns the
        number of entries now served."""
        with self._lock:
            fresh = KnowledgeBase.load(self._directory, cache=self._cache, overlay=self._overlay, **self._dense)
            self._kb = fresh
            log.info("knowledge base reloaded: %d entries", len(fresh))
            return len(fresh)

    def apply(self, version: int, overlay: Overlay) -> bool:
        """Serve the content files with ``overlay`` (the console's edits at ``version``). Does
        nothing when this version or a newer one is already served (a late poll, a repeated
        event); raises KnowledgeBaseError and keeps the old index when the result is broken.
        Returns whether the index changed."""
        with self._lock:
            if version <= self._version:
                return False
            fresh = KnowledgeBase.load(self._directory, cache=self._cache, overlay=overlay, **self._dense)
            self._kb, self._overlay, self._version = fresh, dict(overlay), version
            log.info("knowledge base: console edits version %d applied (%d entries)", version, len(fresh))
            return True

    def search(self, text: str, limit: int = 3) -> SearchResult:
        with metrics.stage("knowledge"):
            result = self._kb.search(text, limit=limit)
        # "suggest" (a few entries to choose from) is what an operator calls "choices".
        metrics.KNOWLEDGE_RESULTS.labels("choices" if result.outcome == "suggest" else result.outcome).inc()
        return result


__all__ = ["KnowledgeBaseError", "KnowledgeService", "dense_options"]
