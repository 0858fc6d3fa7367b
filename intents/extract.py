"""Extractors for the structured bits the dialogue needs: ratings, case numbers, mobiles and
unified social credit codes.

They are deliberately rule-based: these are closed formats (a check digit, a numbering scheme, a
5-point scale) where a regular expression is exact and explainable, unlike the open-ended
act/domain question the classifier answers. Every extractor works on the canonical form from
:func:`intents.normalize.normalize`, so full-width digits, Traditional characters and stray
control characters are handled once, there.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, partial

import yaml

from intents.normalize import VARIANTS_FILE, normalize

__all__ = [
    "CREDIT_CODE_ALPHABET",
    "CREDIT_CODE_WEIGHTS",
    "CreditCode",
    "TextView",
    "code_text",
    "code_view",
    "compact_text",
    "compact_view",
    "credit_code_check_char",
    "extract_rating",
    "find_case_numbers",
    "find_credit_codes",
    "find_mobiles",
    "is_valid_credit_code",
    "mask_credit_code",
    "mask_mobile",
    "rating_in_canonical",
    "recognised_text",
    "recognised_view",
    "variants_may_add_digits",
]

# --------------------------------------------------------------------------- ratings

_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_NUM = r"(?:[0-5](?:\.\d)?|10|100|[零一二两三四五])"
# "5分钟", "三分之一", "2分中心", "一分钱" are not scores.
_NOT_SCORE_AFTER = r"(?!钟|之|中心|局|公司|店|支|析|类|期|批|别|布|厂|行|钱|红|配|享|开|拣|钟)"
_SCORE = re.compile(rf"(?<![\d.一二两三四五六七八九十百千万零])({_NUM})\s*分{_NOT_SCORE_AFTER}")
# "三星手机" / "五星级酒店" are not ratings.
_STARS_WORD = re.compile(r"(?<![\d一二两三四五六七八九十])([1-5一二两三四五])\s*颗?\s*星(?!级|电子|手机|公司|集团)")
_EN_STARS = re.compile(r"(?<![\d.])([1-5]|one|two|three|four|five)\s*stars?\b")
_OUT_OF_FIVE = re.compile(r"(?<![\d.])([0-5](?:\.\d)?)\s*/\s*5(?![\d.])")
_BARE = re.compile(r"[\s。.!！~～,，]*([1-5一二两三四五])\s*(?:分|星)?[\s。.!！~～吧啦呀哈]*")
_FILLED_STARS = re.compile(r"[★⭐🌟]")
_EN_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}

# Verdict words, most specific first: "非常不满意" must win over "满意".
_VERDICTS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"(非常|十分|特别|极其|极为|很|太|超级|相当)不满意?|极不满意|很不爽|差评|极差|太差|非常差|很差劲"), 1),
    (re.compile(r"very\s+(dis|un)satisfied|terrible|very\s+bad|awful"), 1),
    (re.compile(r"不太满意|不大满意|不怎么满意|不满意|不够满意|不好(?!意思)"), 2),
    (re.compile(r"(dis|un)satisfied|not\s+(satisfied|good)|poor|\bbad\b"), 2),
    (re.compile(r"(非常|十分|特别|超级|相当|很|太|超|挺)满意|满分|好评|完美|棒极了|太棒了|非常好|特别好"), 5),
    (re.compile(r"very\s+satisfied|excellent|perfect|full\s+marks"), 5),
    # 基本满意 is the middle of the five national levels (好差评), not a "满意".
    (re.compile(r"基本满意|基本上满意|还算满意"), 3),
    (re.compile(r"满意|不错|挺好|很好"), 4),
    (re.compile(r"\bsatisfied\b|\bgood\b"), 4),
)
# Weak verdicts ("一般" also means "usually": "一般要多久") count only when little else is said.
_WEAK_VERDICTS = re.compile(
    r"(一般般?|还行|凑合|马马虎虎|中规中矩|还可以|过得去|average|so-so|\bok(ay)?\b)"
    r"(?!多|要|都|是|需|来|情况|怎么|什么|会|能|可以|用|的)"
)
_WEAK_MAX_REST = 4
_FILLER = re.compile(r"[\s\W]|吧|啦|呀|吧|哈|了|啊|呢|嘛")


def _number(token: str) -> float:
    if token in _CN_DIGITS:
        return float(_CN_DIGITS[token])
    if token in _EN_NUMBERS:
        return float(_EN_NUMBERS[token])
    return float(token)


def _clamp_score(value: float) -> int:
    """A score on the 1–5 scale; 10- and 100-point answers ("给10分") are read as the top; 0 as the bottom."""
    if value >= 10:
        return 5
    return max(1, min(5, int(value + 0.5)))


def extract_rating(text: str) -> int | None:
    """Satisfaction score 1–5 from what a user wrote, or ``None`` when the text holds none.

    Understands "5分", "五星", "5颗星", "4/5", "★★★★", "打满分", verdict words
    ("非常满意" 5, "满意" 4, "一般" 3, "不满意" 2, "非常不满意" 1), Traditional forms, a few
    English phrasings, and a bare digit sent on its own (the answer to "请打分 1–5").
    """
    if not text:
        return None
    return rating_in_canonical(normalize(text).text)


def rating_in_canonical(canon: str) -> int | None:
    """:func:`extract_rating` on text that is already canonical (saves a second normalisation)."""
    if not canon:
        return None
    filled = len(_FILLED_STARS.findall(canon))
    if filled:
        return min(filled, 5)
    for pattern in (_OUT_OF_FIVE, _SCORE, _STARS_WORD, _EN_STARS):
        match = pattern.search(canon)
        if match:
            return _clamp_score(_number(match.group(1)))
    bare = _BARE.fullmatch(canon)
    if bare:
        return _clamp_score(_number(bare.group(1)))
    for pattern, score in _VERDICTS:
        if pattern.search(canon):
            return score
    weak = _WEAK_VERDICTS.search(canon)
    if weak and len(_FILLER.sub("", canon[: weak.start()] + canon[weak.end() :])) <= _WEAK_MAX_REST:
        return 3
    return None


# --------------------------------------------------------------------------- case numbers

#: Case number in canonical (case-folded, half-width) text; groups: year, serial.
_DASHES = r"[\s\-_‐‑‒–—―−.·/]*"
CASE_NUMBER_RE = re.compile(rf"(?<![a-z0-9])qi{_DASHES}(\d{{4}}){_DASHES}(\d{{6}})(?!\d)")


def find_case_numbers(text: str) -> list[str]:
    """Case numbers in canonical form ``QI-2026-000123``, in order of appearance, without duplicates.

    Users type them from memory or copy them from a phone: lower case, spaces instead of dashes,
    full-width characters and no separators at all are all accepted.
    """
    if not text:
        return []
    found: list[str] = []
    for match in CASE_NUMBER_RE.finditer(normalize(text).text):
        number = f"QI-{match.group(1)}-{match.group(2)}"
        if number not in found:
            found.append(number)
    return found


# --------------------------------------------------------------------------- mobiles

#: Mainland mobile in canonical text; group 1 is the number, maybe with spaces or dashes inside.
MOBILE_RE = re.compile(r"(?<![\d])(?:(?:\+|00)?86[\s\-]*)?(1[3-9]\d(?:[\s\-]?\d){8})(?![\d])")


def find_mobiles(text: str) -> list[str]:
    """Mainland mobile numbers (11 digits, ``1[3-9]…``) as bare digits, accepting +86, spaces and dashes."""
    if not text:
        return []
    found: list[str] = []
    for match in MOBILE_RE.finditer(normalize(text).text):
        digits = re.sub(r"\D", "", match.group(1))
        if digits not in found:
            found.append(digits)
    return found


def mask_mobile(mobile: str) -> str:
    """``13812345678`` → ``138****5678``: enough for the user to recognise, useless to a reader of logs."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", mobile))
    if len(digits) > 11 and digits.startswith("86"):
        digits = digits[-11:]
    if len(digits) != 11:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


# --------------------------------------------------------------------------- credit codes

#: GB 32100-2015 code alphabet: digits and capitals without I, O, S, V, Z (values 0–30).
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE = {ch: i for i, ch in enumerate(CREDIT_CODE_ALPHABET)}
#: Weight of positions 1–17: 3^(i-1) mod 31.
CREDIT_CODE_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
#: Credit-code candidate, any case (check digit not verified).
CREDIT_CODE_RE = re.compile(r"(?<![0-9A-Z])([0-9A-Z]{2}[0-9]{6}[0-9A-Z]{10})(?![0-9A-Z])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class CreditCode:
    """A unified social credit code found in text. ``valid`` is the GB 32100 check-digit verdict:
    some real codes fail it, so callers warn instead of refusing."""

    code: str
    valid: bool


def _canonical_code(code: str) -> str:
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", code)).upper()


def credit_code_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code, from its first 17 (GB 32100-2015).

    Raises ``ValueError`` when the input is not 17 characters of the code alphabet.
    """
    body = _canonical_code(first17)
    if len(body) != 17 or any(ch not in _CREDIT_VALUE for ch in body):
        raise ValueError(f"need 17 characters of {CREDIT_CODE_ALPHABET!r}, got {first17!r}")
    total = sum(_CREDIT_VALUE[ch] * w for ch, w in zip(body, CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def is_valid_credit_code(code: str) -> bool:
    """True when ``code`` is 18 characters of the code alphabet with a correct check character."""
    canon = _canonical_code(code)
    if len(canon) != 18 or any(ch not in _CREDIT_VALUE for ch in canon):
        return False
    return credit_code_check_char(canon[:17]) == canon[17]


def find_credit_codes(text: str) -> list[CreditCode]:
    """Candidate credit codes (18 characters, positions 3–8 an administrative-division number),
    each with its check verdict. A failed check is reported, never dropped."""
    if not text:
        return []
    canon = unicodedata.normalize("NFKC", text).upper()
    found: list[CreditCode] = []
    seen: set[str] = set()
    for match in CREDIT_CODE_RE.finditer(canon):
        code = match.group(1)
        if code not in seen:
            seen.add(code)
            found.append(CreditCode(code=code, valid=is_valid_credit_code(code)))
    return found


def mask_credit_code(code: str) -> str:
    """First 6 and last 4 characters kept (the region and check part), the rest starred (GB/T 35273 style)."""
    canon = _canonical_code(code)
    if len(canon) <= 10:
        return "*" * len(canon)
    return canon[:6] + "*" * (len(canon) - 10) + canon[-4:]


# --------------------------------------------------------------------------- views for masking


@dataclass(frozen=True, slots=True)
class TextView:
    """A normalised view of a text plus, for each of its characters, the span of the original
    text it came from (``starts[i]``, ``ends[i]``).

    Masking must see a number the way the recognisers see it (``１３８`` is ``138``, a zero-width
    space is a separator), yet rewrite the original text, so everything around the number stays
    as the user wrote it; the offsets carry a match in the view back to the original."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original ``[start, end)`` covering view characters ``start … end-1``."""
        return self.starts[start], self.ends[end - 1]


_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co"})  # what _clean in intents.normalize turns into spaces
_INVISIBLE = frozenset({"Cf", "Cs", "Co", "Mn", "Me"})  # nothing a reader sees between two digits


def _view(text: str, mode: str) -> TextView:
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, ch in enumerate(text):
        for out in unicodedata.normalize("NFKC", ch) if not ch.isascii() else ch:
            category = unicodedata.category(out)
            if mode == "recognised":
                if category in _HIDDEN:
                    out = " "
                if out.isspace():
                    if chars and chars[-1] == " ":  # a run of separators is one space
                        ends[-1] = i + 1
                        continue
                    out = " "
            elif mode == "compact" and (category in _INVISIBLE or (category == "Cc" and not out.isspace())):
                if chars:  # dropped, but still covered by the mask of what it sits in
                    ends[-1] = i + 1
                continue
            else:
                out = out.upper()
            for piece in out:
                chars.append(piece)
                starts.append(i)
                ends.append(i + 1)
    return TextView("".join(chars), tuple(starts), tuple(ends))


def recognised_view(text: str) -> TextView:
    """The characters :func:`find_mobiles` matches on (``normalize``: NFKC, control and format
    characters as spaces, runs of whitespace as one space), with offsets into ``text``.

    Only what ``normalize`` does character by character is mirrored: the Chinese conversions
    never touch digits, spaces or dashes; the few word variants that write a digit
    (:func:`variants_may_add_digits`) are left to a check with the recogniser itself."""
    return _view(text, "recognised")


def code_view(text: str) -> TextView:
    """The characters :func:`find_credit_codes` matches on (NFKC, upper case), with offsets."""
    return _view(text, "code")


def compact_view(text: str) -> TextView:
    """NFKC and upper case with invisible characters (zero-width, soft hyphen, joiners, combining
    marks, control characters other than whitespace) dropped: a number written with them inside
    reads as one number here, so masking catches spellings stricter recognisers would split."""
    return _view(text, "compact")


# The same three views without offsets, built at C speed: most texts (log lines) hold no number,
# and matching on these tells so before the offsets (a loop over every character) are worth it.
# They equal ``…_view(text).text`` character for character (tests/spine/test_masking_spellings.py).

_NFKC = partial(unicodedata.normalize, "NFKC")
_WHITESPACE_RUN = re.compile(r"\s+")
# Planes where control, format and combining characters live (the rest is scanned as ranges).
_SCANNED = (range(0x20000), range(0xE0000, 0xE1000))
_RANGES = {"Cs": [(0xD800, 0xDFFF)], "Co": [(0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)]}


@cache
def _category_class(categories: frozenset[str], keep_spaces: bool, limit: int) -> re.Pattern[str]:
    """A regex matching any character below ``limit`` of ``categories`` (whitespace excepted
    with ``keep_spaces``); the code points are scanned once, on first use (~50 ms). A class of
    ASCII or BMP characters is a bitmap to the regex engine, so texts that hold nothing beyond
    them get the small, fast class."""
    points: list[tuple[int, int]] = [(a, min(b, limit - 1)) for c in categories for a, b in _RANGES.get(c, ())
                                     if a < limit]
    for block in _SCANNED:
        for cp in block:
            if cp >= limit:
                break
            ch = chr(cp)
            if unicodedata.category(ch) in categories and not (keep_spaces and ch.isspace()):
                if points and points[-1][1] == cp - 1:
                    points[-1] = (points[-1][0], cp)
                else:
                    points.append((cp, cp))
    body = "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in sorted(points))
    return re.compile(f"[{body}]")


def _matching(text: str, categories: frozenset[str], keep_spaces: bool = False) -> re.Pattern[str]:
    top = ord(max(text)) if text else 0
    limit = 0x80 if top < 0x80 else 0x10000 if top < 0x10000 else 0x110000
    return _category_class(categories, keep_spaces, limit)


_HIDDEN_SET = frozenset(_HIDDEN)
_INVISIBLE_SET = frozenset(_INVISIBLE | {"Cc"})


def _folded(text: str) -> str:
    return text if text.isascii() else "".join(map(_NFKC, text))


def recognised_text(text: str) -> str:
    """``recognised_view(text).text``, fast."""
    folded = _folded(text)
    return _WHITESPACE_RUN.sub(" ", _matching(folded, _HIDDEN_SET).sub(" ", folded))


def code_text(text: str) -> str:
    """``code_view(text).text``, fast."""
    return _folded(text).upper()


def compact_text(text: str) -> str:
    """``compact_view(text).text``, fast."""
    folded = _folded(text)
    return _matching(folded, _INVISIBLE_SET, keep_spaces=True).sub("", folded).upper()


@cache
def _digit_variant_marks() -> tuple[str, ...]:
    """What must be in a text for ``normalize``'s word variants to write a digit into it: the
    non-ASCII characters of such a rule (三 of ``三c`` → ``3c``), or a Latin rule whole."""
    data = yaml.safe_load(VARIANTS_FILE.read_text(encoding="utf-8")) if VARIANTS_FILE.exists() else {}
    marks: set[str] = set()
    for section in ("latin", "chinese", "traditional"):
        for key, value in ((data or {}).get(section) or {}).items():
            if re.search(r"\d", str(value)):
                key = str(key).casefold()
                if key.isascii():
                    marks.add(key)
                else:
                    marks.update(ch for ch in key if not ch.isascii())
    return tuple(sorted(marks))


def variants_may_add_digits(text: str) -> bool:
    """Whether ``normalize`` could write a digit the views above do not see (then only the
    recogniser itself can tell whether a number is there)."""
    folded = _folded(text).casefold()
    return any(mark in folded for mark in _digit_variant_marks())
