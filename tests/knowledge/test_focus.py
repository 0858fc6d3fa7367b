"""Context clauses (who is asking, why, politeness) are dropped before retrieval, so a long real
message is judged on what it asks; and the NLU's out-of-scope verdict never hides a covered answer."""

from __future__ import annotations

import pytest

from handlers.knowledge import compose_answer
from handlers.texts import load_texts
from intents.classifier import NluResult
from intents.labels import INQUIRY, OUT_OF_SCOPE
from intents.normalize import normalize
from knowledge.focus import focus
from knowledge.retriever import KnowledgeBase


def _focus(text: str) -> str:
    return focus(normalize(text).text)


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        ("老板让我问一下，我们做的蓝牙耳机卖到国内要做3C吗，谢谢", "我们做的蓝牙耳机卖到国内要做3c吗,"),
        (
            "我们刚开了家小饭馆，后厨买了台燃气热水器，CCC认证是哪个单位发的证",
            "后厨买了台燃气热水器,ccc认证是哪个单位发的证",
        ),
        ("您好，我们是开超市的，电子秤要每年检定吗", "电子秤要每年检定吗"),
    ],
)
def test_context_clauses_are_dropped(message: str, kept: str) -> None:
    assert _focus(message) == kept


@pytest.mark.parametrize(
    "message",
    [
        "我们的商标是注册的,能用吗",  # says something about the subject, not who is asking
        "收银台那几台电子秤平时称散装食品,这个是不是每年都得找人来检一下",  # the subject is in the first clause
        "谢谢",  # nothing but context: left as it is
        "专利多久授权",
    ],
)
def test_clauses_that_carry_the_question_stay(message: str) -> None:
    assert _focus(message) == normalize(message).text


def test_a_polite_long_message_is_answered_like_its_question(kb: KnowledgeBase) -> None:
    plain = kb.search("强制检定收费吗")
    wrapped = kb.search("老师您好，老板让我问一下，强制检定收费吗，谢谢")
    assert plain.outcome == wrapped.outcome == "answer"
    assert wrapped.best is not None and plain.best is not None and wrapped.best.entry.id == plain.best.entry.id


def test_an_out_of_scope_verdict_does_not_hide_a_covered_answer(kb: KnowledgeBase) -> None:
    """The NLU may call an in-scope question out_of_scope; the knowledge base is asked first."""
    text = "包装上能印有机两个字吗"
    nlu = NluResult(text, normalize(text), INQUIRY, OUT_OF_SCOPE, 0.9)
    composed = compose_answer(kb.search(text), nlu, load_texts())
    assert composed.outcome == "answer" and composed.entry_id == "certification.organic-label-wording"
    nothing = compose_answer(kb.search("帮我订一张去北京的机票"), nlu, load_texts())
    assert nothing.outcome == "out_of_scope"
