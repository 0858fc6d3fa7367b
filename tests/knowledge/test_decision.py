"""The answer decision model (knowledge.decision): shipped current, read the way it was fitted, and
deciding what a user notices — a long message whose entry ranks first clearly is answered."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from knowledge import decision as decmod
from knowledge.calibration import FEATURES, Calibration
from knowledge.retriever import KnowledgeBase


def test_the_shipped_decision_model_is_current() -> None:
    shipped = decmod.Decision.load()
    assert shipped is not None, "no decision model: run `qibot kb fit`"
    assert shipped.key == decmod.current_key(), "the decision model is stale: run `qibot kb fit`"
    assert shipped.get("lexical", FEATURES) is not None


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    names = decmod.feature_names(FEATURES)
    model = decmod.StageModel(names, np.zeros(len(names)), np.ones(len(names)), np.full(len(names), 0.1), -1.0, 0.9)
    decmod.Decision({"lexical": model}, "k").save(tmp_path / "d.npz")
    loaded = decmod.Decision.load(tmp_path / "d.npz")
    assert loaded is not None and loaded.key == "k"
    got = loaded.get("lexical", FEATURES)
    assert got is not None and got.answer == 0.9
    x = np.ones(len(names))
    assert abs(got.probability(x) - model.probability(x)) < 1e-12
    assert loaded.get("lexical", ("bm25",)) is None  # fitted for other match features: not used


def test_without_a_model_the_softmax_threshold_decides() -> None:
    kb = KnowledgeBase.load(calibration=None)
    plain = KnowledgeBase.from_entries(kb.entries, calibration=Calibration.load())
    ranked = plain.rank("强制检定收费吗")
    assert ranked.p_right is None
    expected = "answer" if ranked.confidence >= plain.calibration.answer else "suggest"
    assert plain.search("强制检定收费吗").outcome == expected


def test_the_shipped_kb_judges_its_top_candidate(kb: KnowledgeBase) -> None:
    ranked = kb.rank("强制检定收费吗")
    assert ranked.p_right is not None and 0.0 <= ranked.p_right <= 1.0
    assert kb.search("强制检定收费吗").outcome == "answer"
    assert kb.search("今天天气怎么样").outcome != "answer"


def test_reranker_and_coverage_models_round_trip(tmp_path: Path) -> None:
    from knowledge import rerank

    names = decmod.feature_names(FEATURES)
    model = decmod.StageModel(names, np.zeros(len(names)), np.ones(len(names)), np.full(len(names), 0.1), -1.0, 0.9)
    cover = decmod.StageModel(names, np.zeros(len(names)), np.ones(len(names)), np.full(len(names), -0.1), 2.0, 0.6)
    rnames = rerank.feature_names(FEATURES)
    reranker = rerank.Reranker(rnames, np.ones(len(rnames)), np.linspace(-1, 1, len(rnames)))
    decmod.Decision({"lexical": model}, "k", {"lexical": reranker}, {"lexical": cover}).save(tmp_path / "d.npz")
    loaded = decmod.Decision.load(tmp_path / "d.npz")
    assert loaded is not None
    got_cover, got_rr = loaded.cover("lexical", FEATURES), loaded.reranker("lexical", FEATURES)
    assert got_cover is not None and got_cover.answer == 0.6
    assert got_rr is not None
    x = np.arange(3 * len(rnames), dtype=np.float64).reshape(3, len(rnames))
    assert np.allclose(got_rr.scores(x), reranker.scores(x))
    assert loaded.reranker("dense", FEATURES) is None and loaded.cover("lexical", ("bm25",)) is None


def test_a_question_judged_outside_the_content_is_never_answered_outright(kb: KnowledgeBase) -> None:
    """Whatever P(first is right) says, a coverage verdict below its bar keeps the answer back."""
    import dataclasses

    from knowledge.retriever import answers

    ranked = kb.rank("强制检定收费吗")
    sure = dataclasses.replace(ranked, p_right=0.99, answer_at=0.5, p_covered=0.9, covered_at=0.5)
    assert answers(sure, kb.calibration)
    assert not answers(dataclasses.replace(sure, p_covered=0.2), kb.calibration)
