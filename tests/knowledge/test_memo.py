"""The analysis memo: a start reuses the analysed content instead of re-analysing ~8,500 texts,
and never at the price of a different answer (a stale, foreign or tampered memo is not used)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from intents.cache import SignedStore
from knowledge import memo as memomod
from knowledge.analysis import Analyzer, raw_terms
from knowledge.entries import load_entries
from knowledge.memo import SHIPPED_MEMO, AnalysisMemo
from knowledge.retriever import KnowledgeBase, build_memo, content_texts
from knowledge.synonyms import build, load_groups

QUESTIONS = ("电子秤要定期送检吗", "3C认证怎么办", "商标续展多少钱", "GB/T 19001 认证", "加油机要校一下", "你好")


class _Counting:
    """Counts the texts really analysed (not answered from a memo)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.texts: list[str] = []
        original = Analyzer.analyze

        def analyze(analyzer: Analyzer, text: str):  # type: ignore[no-untyped-def]
            self.texts.append(text)
            return original(analyzer, text)

        monkeypatch.setattr(Analyzer, "analyze", analyze)


def test_the_shipped_memo_is_current_and_equals_a_fresh_analysis() -> None:
    """After any change to the bundled content, the synonyms, the variants, the user dictionary or
    the analysis code, `qibot kb build` must be run, or this fails (starts would be slow again)."""
    assert SHIPPED_MEMO.exists(), "run `qibot kb build`"
    groups = load_groups()
    memo = AnalysisMemo(groups)
    texts = content_texts(load_entries())
    assert len(memo) and memo.covers(texts), "the shipped analysis memo is stale: run `qibot kb build`"
    synonyms = build(groups, raw_terms)
    assert memo.synonyms() == synonyms
    fresh = Analyzer(synonyms).analyze
    lookup = memo.analyzer(Analyzer(synonyms))
    assert [lookup(t) for t in texts] == [fresh(t) for t in texts]


def test_a_start_from_the_memo_analyses_no_content_and_answers_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh = KnowledgeBase.load(memo=False)
    counting = _Counting(monkeypatch)
    memoised = KnowledgeBase.load()
    assert counting.texts == []
    for question in QUESTIONS:
        assert memoised.search(question) == fresh.search(question)
        assert memoised.rank(question).features.tolist() == fresh.rank(question).features.tolist()


def test_a_stale_or_foreign_memo_is_never_used(
    fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A memo made under other synonym groups (any other key) would fold terms differently.
    (On the small fixture content: the rule is the same for the bundled one, at a tenth the cost.)"""
    content = fixtures / "valid"
    foreign = AnalysisMemo([["电子秤", "外观设计"]], shipped=False)
    poisoned = foreign.analyzer(Analyzer(foreign.synonyms()))
    for text in content_texts(load_entries(content)):
        poisoned(text)
    path = tmp_path / "analysis.npz"
    foreign.write_shipped(path)
    assert len(AnalysisMemo([["电子秤", "外观设计"]], shipped=path)) > 0  # readable under its own key
    monkeypatch.setattr(memomod, "SHIPPED_MEMO", path)
    current = AnalysisMemo(load_groups(), shipped=path)
    assert len(current) == 0
    counting = _Counting(monkeypatch)
    kb = KnowledgeBase.load(content)
    assert counting.texts  # analysed afresh
    best = kb.search("电子秤多久检定一次").best
    assert best is not None and best.entry.id == "metrology.scale-verification"


def test_local_content_is_analysed_once_then_cached(
    fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = tmp_path / "kb"
    shutil.copytree(fixtures / "valid", content)
    cache = SignedStore(tmp_path / "cache")
    counting = _Counting(monkeypatch)
    first = KnowledgeBase.load(content, cache=cache)
    assert counting.texts  # nothing ships for this content
    counting.texts.clear()
    again = KnowledgeBase.load(content, cache=SignedStore(tmp_path / "cache"))
    assert counting.texts == []
    assert again.search("电子秤多久检定一次") == first.search("电子秤多久检定一次")

    # an edited phrasing is analysed afresh (and found); the rest still comes from the cache
    entries = content / "entries.yaml"
    entries.write_text(entries.read_text(encoding="utf-8").replace("电子计价秤多久检定一次", "地磅多久检定一次"),
                       encoding="utf-8")
    counting.texts.clear()
    edited = KnowledgeBase.load(content, cache=SignedStore(tmp_path / "cache"))
    assert counting.texts == ["地磅多久检定一次"]
    best = edited.search("地磅多久检定一次").best
    assert best is not None and best.entry.id == "metrology.scale-verification"


def test_a_tampered_cache_is_ignored(fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir = tmp_path / "cache"
    KnowledgeBase.load(fixtures / "valid", cache=SignedStore(cache_dir))
    (bundle,) = cache_dir.glob("kb-analysis-*.npz")
    bundle.write_bytes(bundle.read_bytes().replace("电子秤".encode(), "外观设".encode()))
    counting = _Counting(monkeypatch)
    kb = KnowledgeBase.load(fixtures / "valid", cache=SignedStore(cache_dir))
    assert counting.texts
    best = kb.search("电子秤要送检吗").best
    assert best is not None and best.entry.id == "metrology.scale-verification"


def test_build_memo_covers_the_content(fixtures: Path) -> None:
    memo = build_memo(fixtures / "valid")
    assert memo.covers(content_texts(load_entries(fixtures / "valid")))
