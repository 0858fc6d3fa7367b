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
