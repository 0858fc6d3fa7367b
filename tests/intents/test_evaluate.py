"""Metric arithmetic of the evaluation report, on hand-computable cases."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from intents.dataset import Example
from intents.evaluate import NO_DOMAIN, evaluate, format_report, score_labels


def test_score_labels_by_hand() -> None:
    gold = ["a", "a", "b", "b"]
    pred = ["a", "b", "b", "b"]
    s = score_labels(gold, pred, ["a", "b"])
    assert s.accuracy == 0.75
    # F1(a) = 2·1/(2+1) = 0.667, F1(b) = 2·2/(2+3) = 0.8
    assert s.f1 == pytest.approx({"a": 2 / 3, "b": 0.8})
    assert s.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert s.confusion["a"]["b"] == 1


@dataclass
class Fixed:
    act: str
    domain: str | None
    confidence: float = 0.5


class Table:
    def __init__(self, answers: dict[str, Fixed]) -> None:
        self.answers = answers

    def parse(self, text: str) -> Fixed:
        return self.answers[text]


def test_inquiry_not_recognised_counts_as_wrong_domain() -> None:
    examples = [
        Example("压力表送检", "inquiry", "metrology"),
        Example("转人工", "handoff", None),
        Example("商标注册", "inquiry", "ip"),
    ]
    parser = Table(
        {
            "压力表送检": Fixed("inquiry", "metrology"),
            "转人工": Fixed("handoff", None),
            "商标注册": Fixed("help", None),
        }
    )
    report = evaluate(parser, examples)
    assert report.acts.accuracy == pytest.approx(2 / 3)
    assert report.domains.n == 2 and report.domains.accuracy == 0.5
    assert report.domains.confusion["ip"][NO_DOMAIN] == 1
    assert [m.text for m in report.misses] == ["商标注册"]
    text = format_report(report)
    assert "inquiry/ip" in text and "-> help" in text and "商标注册" in text
