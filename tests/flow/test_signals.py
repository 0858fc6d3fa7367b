"""The vocabulary rules of handlers/signals.py on their own, with the classifier's verdict given
(so a retrained model cannot change what these check): what makes a message a demand rather
than a question, a complaint or a handoff sure enough to act on, a comment that says nothing."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from handlers import signals
from intents.normalize import normalize


def said(text: str, act: str = "inquiry", confidence: float = 1.0, domain: str | None = None) -> Any:
    nlu = SimpleNamespace(normalized=normalize(text), act=act, confidence=confidence, domain=domain)
    return SimpleNamespace(nlu=nlu, message=SimpleNamespace(text=text))


@pytest.mark.parametrize("text", [
    "想提交服务需求", "帮我们安排一下检定", "需要找家机构做检测", "I'd like to request a calibration",
    "帮我们安排一下检定，有3台加油机", "能帮我们安排一下校准吗？", "我们有一批压力表要送检",
    "商标被抢注了，帮我们维权", "我要办理", "請幫我們安排一下檢定",
])
def test_demands_in_natural_words(text: str) -> None:
    assert signals.is_demand(said(text))


@pytest.mark.parametrize("text", [
    "电子秤要不要检定", "食品需要做检测吗？", "检测报告需要找哪家机构出具？", "怎么预约检定",
    "How do I get CCC certification?", "我需要了解CCC认证", "加油机多久检定一次", "你好",
])
def test_questions_are_not_demands(text: str) -> None:
    assert not signals.is_demand(said(text))


def test_an_out_of_scope_request_is_no_demand() -> None:
    assert not signals.is_demand(said("帮我们安排一下营业执照办理", domain="out_of_scope"))


@pytest.mark.parametrize(("text", "domain"), [
    ("帮我们安排一下检定，有3台加油机", "metrology"), ("需要找家机构做检测", "testing"),
    ("I'd like to request a calibration", "metrology"), ("我们想申请市长质量奖", "quality"),
    ("外观设计专利申请", "ip"), ("想提交服务需求", None),
])
def test_the_demand_names_its_service(text: str, domain: str | None) -> None:
    assert signals.demand_domain(said(text, act="help", confidence=0.9)) == domain


@pytest.mark.parametrize(("text", "confidence", "verdict"), [
    ("专员一直拖着不办，服务太差了", 0.95, "file"),
    ("我要投诉，答应的事没做", 0.4, "file"),  # the word itself
    ("客服回复太慢了", 0.7, "ask"),
    ("是的，都是收银台用的", 0.95, "ask"),  # opens like an answer
    ("电话打不通", 0.95, "ask"),  # a difficulty, not a grievance
    ("好差的服务", 0.9, "file"),  # "好" is no answer without a pause
])
def test_a_complaint_is_filed_only_when_clear(text: str, confidence: float, verdict: str) -> None:
    assert signals.complaint_verdict(said(text, act="complaint", confidence=confidence)) == verdict


def test_no_complaint_without_the_act() -> None:
    assert signals.complaint_verdict(said("怎么投诉超市卖假货", act="inquiry", domain="out_of_scope")) is None


@pytest.mark.parametrize(("text", "confidence", "wanted"), [
    ("转人工", 1.0, True), ("找一下", 0.45, False), ("人工在吗", 0.45, True), ("可以，麻烦尽快", 0.85, False),
])
def test_a_handoff_needs_a_sure_classifier_or_a_word_for_a_person(text: str, confidence: float,
                                                                    wanted: bool) -> None:
    assert signals.handoff_wanted(said(text, act="handoff", confidence=confidence)) is wanted


@pytest.mark.parametrize(("text", "nothing"), [
    ("没有", True), ("没了", True), ("no", True), ("No, thank you.", True), ("好的，谢谢", True),
    ("没人联系我", False), ("专员很专业", False), ("好评", False),
])
def test_nothing_to_add(text: str, nothing: bool) -> None:
    assert signals.is_no_comment(said(text, act="thanks_bye")) is nothing
