"""Retrieval behaviour the dialogue relies on: scripts, synonyms, the three outcomes, odd input."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from knowledge.entries import Entry
from knowledge.retriever import MAX_CHOICES, KnowledgeBase, SearchResult


def best_id(result: SearchResult) -> str | None:
    return result.best.entry.id if result.best else None


@pytest.mark.parametrize(
    ("simplified", "traditional"),
    [
        ("外观设计专利保护几年", "外觀設計專利保護幾年"),
        ("电子秤要强制检定吗", "電子秤要強制檢定嗎"),
        ("CCC认证是什么", "CCC認證是什麼"),
        ("检测报告没有CMA标志能用吗", "檢測報告沒有CMA標誌能用嗎"),
        ("商标到期了怎么续展", "商標到期了怎麼續展"),
    ],
)
def test_traditional_retrieves_what_simplified_does(kb: KnowledgeBase, simplified: str, traditional: str) -> None:
    a, b = kb.search(simplified), kb.search(traditional)
    assert best_id(a) is not None
    assert (a.outcome, best_id(a)) == (b.outcome, best_id(b))


@pytest.mark.parametrize(
    "variants",
    [
        ("3C认证是什么", "CCC认证是什么", "强制性产品认证是什么"),
        ("商标续期怎么办", "商标续展怎么办"),
        ("软著保护期多久", "软件著作权保护期多久"),
    ],
)
def test_synonyms_reach_the_same_entry(kb: KnowledgeBase, variants: tuple[str, ...]) -> None:
    ids = {best_id(kb.search(v)) for v in variants}
    assert len(ids) == 1 and None not in ids


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("3C认证是什么意思", "certification.ccc-what-is"),
        ("RB/T 214-2017", "testing.review-criteria-rbt214"),
        ("注册商标到期了怎么续展", "ip.trademark-renewal"),
        ("加油机要检定吗", "metrology.fuel-dispenser"),
    ],
)
def test_clear_question_is_answered(kb: KnowledgeBase, question: str, entry_id: str) -> None:
    result = kb.search(question)
    assert result.outcome == "answer"
    assert best_id(result) == entry_id
    assert result.best is not None and result.best.score >= kb.calibration.answer


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [("CCC认证是什么", "certification.ccc-what-is"), ("商标续展", "ip.trademark-renewal")],
)
def test_a_terse_question_near_several_entries_offers_its_entry_first(
    kb: KnowledgeBase, question: str, entry_id: str
) -> None:
    """Since the detail entries landed (CCC changes, renewal window…), two-word questions sit
    between several entries: they get "您是不是想问" headed by the right entry, not a guess."""
    result = kb.search(question)
    assert result.outcome in ("answer", "suggest")
    assert best_id(result) == entry_id


def _twin(entry_id: str, kind: str, years: str) -> Entry:
    return Entry(
        id=entry_id,
        domain="ip",
        title=f"{kind}专利保护期限",
        questions=(f"{kind}专利保护几年", f"{kind}专利有效期多长", f"{kind}专利权期限怎么算", f"{kind}專利保護多久"),
        answer=f"{kind}专利权的期限为{years}年，自申请日起计算。",
        detail=None,
        basis="《中华人民共和国专利法》第四十二条",
        tags=("专利期限",),
        checked=dt.date(2026, 1, 1),
    )


def test_ambiguous_question_suggests_at_most_three(kb: KnowledgeBase) -> None:
    twins = [_twin("ip.invention-term", "发明", "二十"), _twin("ip.utility-term", "外观", "十五")]
    small = KnowledgeBase.from_entries([*twins, *kb.entries[:40]], calibration=kb.calibration)
    result = small.search("专利保护几年", limit=5)
    assert result.outcome == "suggest"
    assert 1 <= len(result.hits) <= MAX_CHOICES
    assert {h.entry.id for h in result.hits} <= {"ip.invention-term", "ip.utility-term"} | {
        e.id for e in kb.entries[:40]
    }
    assert result.hits[0].score < kb.calibration.answer
    assert all(h.score >= kb.calibration.suggest for h in result.hits)


@pytest.mark.parametrize("question", ["今天天气怎么样", "帮我办营业执照", "给我讲个笑话", "股票明天会涨吗"])
def test_out_of_scope_is_never_a_legal_answer(kb: KnowledgeBase, question: str) -> None:
    result = kb.search(question)
    if result.outcome == "answer":
        assert result.best is not None and result.best.entry.domain == "platform"
    else:
        assert all(h.entry.domain == "platform" for h in result.hits) or result.outcome == "none"


def test_small_talk_gets_none(kb: KnowledgeBase) -> None:
    assert kb.search("今天天气怎么样") == SearchResult("none", ())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "a" * 10_000,
        "检定" * 5_000,
        "😀🎉👍",
        "'; DROP TABLE entries; --",
        "1' OR '1'='1",
        "<script>alert('x')</script><b>CCC</b>",
        "\x00\x07\x1b[31m控制字符\u200b\ufeff",
        "GB/T" * 300,
        "？？？！！！",
        "\ud800",
    ],
)
def test_bad_input_never_raises(kb: KnowledgeBase, text: str) -> None:
    result = kb.search(text)
    assert result.outcome in ("answer", "suggest", "none")
    assert len(result.hits) <= 3


def test_non_string_input_is_tolerated(kb: KnowledgeBase) -> None:
    assert kb.search(12315).outcome in ("answer", "suggest", "none")  # type: ignore[arg-type]


def test_hits_are_the_ranking_within_limit(kb: KnowledgeBase) -> None:
    # the re-ranker may put a candidate with a lower softmax probability first (each keeps its own
    # probability), so the hits follow the ranking, not the scores
    text = "CNAS认可和CMA资质有什么区别"
    ranked = [kb.entries[int(i)].id for i in kb.rank(text).indices]
    for limit in (1, 2, 3, 5):
        result = kb.search(text, limit=limit)
        assert len(result.hits) <= limit
        positions = [ranked.index(h.entry.id) for h in result.hits]
        assert positions == sorted(positions) and (not positions or positions[0] == 0)
        assert all(0.0 <= h.score <= 1.0 for h in result.hits)
    assert kb.search("CCC认证是什么", limit=0).outcome == "none"


def test_get_and_len(kb: KnowledgeBase) -> None:
    assert len(kb) == len(kb.entries) >= 250
    first = kb.entries[0]
    assert kb.get(first.id) is first
    assert kb.get("no.such-entry") is None


def test_result_types_are_frozen(kb: KnowledgeBase) -> None:
    result = kb.search("CCC认证是什么")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.outcome = "none"  # type: ignore[misc]
    assert result.best is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.best.entry.answer = "x"  # type: ignore[misc]
