"""Identifiers never reach a log line in clear, whoever logs them."""

from __future__ import annotations

import logging

import pytest

from bot.privacy import RedactingFilter, mask_name, redact


@pytest.mark.parametrize(
    ("text", "masked", "gone"),
    [
        ("联系电话13812345678", "138****5678", "13812345678"),
        ("手机 +86 139-1234-5678", "139****5678", "139-1234-5678"),
        ("代码91110000802100433B", "911100********433B", "91110000802100433B"),
        ("代码 91110000802100433b", "911100", "802100433b"),
        ("身份证350203199001011234", "350203********1234", "350203199001011234"),
    ],
)
def test_identifiers_are_masked(text: str, masked: str, gone: str) -> None:
    out = redact(text)
    assert masked in out and gone not in out


def test_case_numbers_and_dates_are_left_alone() -> None:
    text = "QI-2026-000123 于 2026-11-25 受理，金额 12345 元"
    assert redact(text) == text


def test_names_shown_to_enterprises_are_masked() -> None:
    assert mask_name("王小明") == "王专员"
    assert mask_name(None) == "专员"


def test_every_log_record_passes_through_the_filter(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("qibot.test.privacy")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="qibot.test.privacy"):
        logger.info("user %s wrote from %s", "张三", "13812345678")
    assert "13812345678" not in caplog.text
    assert "138****5678" in caplog.text
