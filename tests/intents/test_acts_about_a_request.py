"""Progress queries and cancels that name the service they are about still reach their act.

Messages about a request already filed usually say what it was ("送检的样品", "商标的申请"); those
domain words used to pull them to a new inquiry, so the user got a knowledge answer instead of
their request's status, or the request went on although they had withdrawn it. The phrasings
here are written for this test (not taken from the training data or an evaluation set); a
question *about* durations or withdrawal in general stays an inquiry.
"""

from __future__ import annotations

import pytest

from intents.classifier import Nlu
from intents.labels import INQUIRY


@pytest.mark.parametrize(
    "text",
    [
        "上周寄的那几个样品测好了没",
        "那台地磅的检定约到哪天了，一直没人回",
        "前阵子提交的专利申请现在什么情况",
        "我們送的樣品檢測好了嗎",
        "Any progress on the calibration we requested?",
    ],
)
def test_a_progress_query_naming_its_service(nlu: Nlu, text: str) -> None:
    assert nlu.parse(text).act == "progress_query"


@pytest.mark.parametrize(
    "text",
    [
        "地磅检定那个需求不要了，帮我撤掉",
        "商标的那个申请我们撤回，不办了",
        "品牌评价先停掉吧，老板改主意了",
        "檢測的委託請幫我撤銷",
        "Please cancel the testing request, we found another lab.",
    ],
)
def test_a_cancel_naming_its_service(nlu: Nlu, text: str) -> None:
    assert nlu.parse(text).act == "cancel"


@pytest.mark.parametrize(
    ("text", "domain"),
    [
        ("样品检测一般几天能出报告", "testing"),
        ("商标申请提交后可以撤回吗", "ip"),
    ],
)
def test_a_general_question_about_timing_or_withdrawal_stays_an_inquiry(nlu: Nlu, text: str, domain: str) -> None:
    result = nlu.parse(text)
    assert (result.act, result.domain) == (INQUIRY, domain)
