"""The knowledge base as a service: the current index, validated reloads, and the gap log."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import metrics
from bot.storage.dialect import upsert_increment
from bot.storage.models import KbGap
from intents import embed
from intents.cache import SignedStore
from intents.normalize import normalize
from intents.vectors import VectorStore
from knowledge.dense import SHIPPED_VECTORS
from knowledge.retriever import KnowledgeBase, KnowledgeBaseError, SearchResult

log = logging.getLogger(__name__)

GAP_TEXT_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Gap:
    text: str
    count: int
    last_seen: datetime


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

    With sentence embeddings (``embeddings``: None follows ``QIBOT_EMBEDDINGS``), questions the
    lexical ranking is unsure of are also matched by meaning; vectors of the bundled content are
    shipped, those of edited or local content are embedded once into ``cache_dir``. Likewise the
    analysis of the content texts (``knowledge.memo``): shipped for the bundled content, made once
    and kept in ``cache_dir`` for edited or local content, so starts and reloads skip it."""

    def __init__(
        self, directory: Path | None = None, cache_dir: Path | None = None, embeddings: bool | None = None
    ) -> None:
        self._directory = directory
        self._lock = threading.Lock()
        self._dense = dense_options(cache_dir, embeddings)
        self._cache = SignedStore(cache_dir) if cache_dir is not None else None
        self._kb = KnowledgeBase.load(directory, cache=self._cache, **self._dense)

    @property
    def kb(self) -> KnowledgeBase:
        return self._kb

    def reload(self) -> int:
        """Rebuild from the content files; raises KnowledgeBaseError and keeps the old index
        when the new content is broken. Returns the number of entries now served."""
        with self._lock:
            fresh = KnowledgeBase.load(self._directory, cache=self._cache, **self._dense)
            self._kb = fresh
            log.info("knowledge base reloaded: %d entries", len(fresh))
            return len(fresh)

    def search(self, text: str, limit: int = 3) -> SearchResult:
        with metrics.stage("knowledge"):
            result = self._kb.search(text, limit=limit)
        # "suggest" (a few entries to choose from) is what an operator calls "choices".
        metrics.KNOWLEDGE_RESULTS.labels("choices" if result.outcome == "suggest" else result.outcome).inc()
        return result


async def log_gap(session: AsyncSession, text: str, now: datetime) -> None:
    """Count an unanswered question under its normalised form, for the curators' gap list."""
    key = normalize(text).text[:GAP_TEXT_LIMIT]
    if not key:
        return
    await upsert_increment(
        session,
        KbGap.__table__,
        {"normalized": key, "sample": text[:2000], "count": 1, "first_seen": now, "last_seen": now},
        ("normalized",),
        "count",
        {"last_seen": now},
    )


async def gaps(session: AsyncSession, limit: int = 50) -> list[Gap]:
    rows = await session.execute(
        select(KbGap).order_by(KbGap.count.desc(), KbGap.last_seen.desc()).limit(limit)
    )
    return [Gap(row.sample, row.count, row.last_seen) for row in rows.scalars()]


__all__ = ["Gap", "KnowledgeBaseError", "KnowledgeService", "gaps", "log_gap"]
