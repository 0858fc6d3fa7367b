"""Extractors: closed formats, so every accepted spelling is pinned."""

from __future__ import annotations

import pytest

from intents.extract import (
    CreditCode,
    credit_code_check_char,
    extract_rating,
    find_case_numbers,
    find_credit_codes,
    find_mobiles,
    is_valid_credit_code,
    mask_credit_code,
    mask_mobile,
)

# Published unified social credit codes that pass the GB 32100 check (verified by the
# implementation under test *and* by the hand computation in test_check_char_by_hand).
VALID_CODES = [
    "914403001922038216",  # 华为技术有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
    "91330100799655058B",  # 阿里巴巴（中国）有限公司
    "91110000802100433B",
]
# Changing the check character (or any other character) must fail the check.
INVALID_CODES = [
    "914403001922038217",
    "91110108551385082R",
    "91330100799655058C",
    "91350200612003428M",  # circulates as an example; its check character should be G
    "914403001922038226",  # a digit changed in the body
]


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("5分", 5),
        ("给4分吧", 4),
        ("3 分", 3),
        ("五星", 5),
        ("5星", 5),
        ("五颗星", 5),
        ("五顆星", 5),
        ("非常满意", 5),
        ("非常滿意", 5),
        ("十分满意", 5),
        ("满意", 4),
        ("滿意", 4),
        ("一般", 3),
        ("感觉一般般吧", 3),
        ("还行吧", 3),
        ("不满意", 2),
        ("不太滿意", 2),
        ("非常不满意", 1),
        ("非常不滿意", 1),
        ("★★★★", 4),
        ("★★★☆☆", 3),
        ("⭐⭐⭐⭐⭐", 5),
        ("打满分", 5),
        ("給滿分", 5),
        ("4", 4),
        ("２", 2),
        ("4/5", 4),
        ("５分", 5),
        ("给10分", 5),
        ("0分", 1),
        ("very satisfied", 5),
        ("5 stars", 5),
        ("dissatisfied", 2),
    ],
)
def test_rating_extracted(text: str, score: int) -> None:
    assert extract_rating(text) == score


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "我想问一般多久能出报告",
        "等了5分钟了",
        "三星手机的CCC认证",
        "2026年的标准",
        "不好意思打扰一下",
        "帮我查一下进度",
        "6",
    ],
)
def test_no_rating(text: str) -> None:
    assert extract_rating(text) is None


def test_case_numbers_all_spellings_to_canonical() -> None:
    text = "查询 qi-2026-000123 和 QI 2026 000124，ＱＩ－２０２６－０００１２５，QI2026000126，又是qi_2026_000123"
    assert find_case_numbers(text) == ["QI-2026-000123", "QI-2026-000124", "QI-2026-000125", "QI-2026-000126"]


@pytest.mark.parametrize("text", ["", "没有案号", "QI-26-000123", "QI-2026-00012", "XQI-2026-000123", "2026-000123"])
def test_no_case_number(text: str) -> None:
    assert find_case_numbers(text) == []


def test_mobiles() -> None:
    text = "电话 138 1234 5678，或 +86-139-1234-5678；还是13812345678；座机 0592-1234567"
    assert find_mobiles(text) == ["13812345678", "13912345678"]
    assert find_mobiles("全角１３９１２３４５６７８") == ["13912345678"]


@pytest.mark.parametrize("text", ["12345678901", "1381234567", "138123456789", "订单号 2138123456789"])
def test_not_mobiles(text: str) -> None:
    assert find_mobiles(text) == []


def test_mask_mobile() -> None:
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_mobile("+86 138-1234-5678") == "138****5678"


def test_check_char_by_hand() -> None:
    """Σ value × 3^(i-1) mod 31 over the first 17, check = (31 − Σ mod 31) mod 31, for 华为's code."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    body = "91440300192203821"
    total = sum(alphabet.index(c) * w for c, w in zip(body, weights, strict=True))
    assert alphabet[(31 - total % 31) % 31] == "6" == credit_code_check_char(body)


@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_credit_codes(code: str) -> None:
    assert is_valid_credit_code(code)
    assert credit_code_check_char(code[:17]) == code[17]
    assert is_valid_credit_code(code.lower())


@pytest.mark.parametrize("code", [*INVALID_CODES, "91440300192203821", "9144030019220382160", "91440300192203821I", ""])
def test_invalid_credit_codes(code: str) -> None:
    assert not is_valid_credit_code(code)


def test_code_alphabet_excludes_ambiguous_letters() -> None:
    for bad in "IOSVZ":
        with pytest.raises(ValueError):
            credit_code_check_char("9144030019220382" + bad)


def test_find_credit_codes_reports_failed_check() -> None:
    text = "我司代码914403001922038216，另一家91350200612003428M，全角９１１１０１０８５５１３８５０８２ｑ"
    assert find_credit_codes(text) == [
        CreditCode("914403001922038216", True),
        CreditCode("91350200612003428M", False),
        CreditCode("91110108551385082Q", True),
    ]
    assert find_credit_codes("没有代码 QI-2026-000123 13812345678") == []


def test_mask_credit_code() -> None:
    assert mask_credit_code("914403001922038216") == "914403********8216"
