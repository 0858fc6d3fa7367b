"""Standard and regulation codes as single, exactly matched tokens.

Generic Chinese full-text search mangles codes: jieba cuts ``GB/T 19001-2016`` into ``gb / t
19001 — 2016``, so "19001" floats free and the year becomes a number that matches any other
year. Enterprises also write the same code many ways (``GB/T19001``, ``gb t 19001``,
``GB/T 19001—2016``, ``ISO 9001:2015``). This module finds codes in *normalised* text (NFKC,
case-folded, see ``intents.normalize``) and turns each into canonical tokens:

* ``gb/t19001``       the code without its year: a query without a year matches any year;
* ``gb/t19001@2016``  the code with its year: a query with a year prefers the same year;
* ``gb~19001``        the family without /T or /Z: "GB 19001" still finds "GB/T 19001".

Aliases that are words rather than codes (3C ↔ CCC) live in the synonyms file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Industry-standard prefixes (行业标准代号) that enterprises meet; each may carry /T or /Z.
_INDUSTRY_TEXT = """
aq bb cb ch cj cy da dl dz ej fz ga gh gy hb hg hj hs hy jb jc jg jr jt jy lb ld ls ly mh mt
mz nb ny qb qc qj rb sb sc sh sj sl sn sy tb td ty wb wh wj wm ws ww xb yb yc yd ys yy yz zy
"""
_INDUSTRY = _INDUSTRY_TEXT.split()

_DASH = r"[-‐‑‒–—―~_]"
_SEP = rf"(?:\s*{_DASH}\s*|\s*)"
_YEAR = rf"(?:(?:\s*(?:{_DASH}|:)\s*|\s+)(?P<year>(?:19|20)\d{{2}})(?!\d))?"
_NUMBER = r"(?P<number>\d{1,6}(?:\.\d{1,3})*)"
_BEFORE = r"(?<![a-z0-9])"

# Chinese national, metrology, industry, local (DB35), group (T/xxx) and enterprise (Q/xxx) codes.
_CN_FAMILY = (
    r"(?P<family>gbz(?=\s*\d)|gb|jjg|jjf|gjb|db\s*\d{2,6}|t\s*/\s*[a-z]{2,12}|q\s*/\s*[a-z0-9]{2,12}|"
    + "|".join(_INDUSTRY)
    + r")"
)
_CN = re.compile(_BEFORE + _CN_FAMILY + r"(?:\s*/\s*|\s+)?(?P<kind>[tz](?![a-z]))?" + _SEP + _NUMBER + _YEAR)
# International: ISO, ISO/IEC, ISO/TS, IEC, IATF.
_INTL = re.compile(
    _BEFORE
    + r"(?P<family>iso(?:\s*/\s*(?:iec|ts|tr|pas))?|iec|iatf)"
    + _SEP
    + _NUMBER
    + r"(?:\s*-\s*(?P<part>\d{1,2})(?!\d))?"
    + _YEAR
)
# Accreditation and certification documents: CNAS-CL01, CNAS CL01-A001, CNCA-C01-01.
_CNAS = re.compile(
    _BEFORE
    + r"(?P<family>cnas|cnca)"
    + _SEP
    + r"(?P<number>[a-z]{1,3}\s*\d{2,3}(?:\s*[-‐‑‒–—―]\s*(?:[a-z]\d{3}|\d{2}))?)"
    + _YEAR
)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Code:
    """One code found in a text: where it is and its canonical tokens."""

    start: int
    end: int
    base: str  # canonical code without year, e.g. "gb/t19001"
    loose: str  # family without /T or /Z, e.g. "gb~19001"
    year: str | None

    @property
    def with_year(self) -> str | None:
        return f"{self.base}@{self.year}" if self.year else None

    @property
    def tokens(self) -> tuple[str, ...]:
        """Index terms for this code: base, loose family and (when given) base+year."""
        out = [self.base]
        if self.loose != self.base:
            out.append(self.loose)
        if self.year:
            out.append(f"{self.base}@{self.year}")
        return tuple(out)

    @property
    def canonical(self) -> str:
        """A readable canonical spelling used in place of the code for fuzzy matching."""
        return f"{self.base}-{self.year}" if self.year else self.base


def _squash(text: str) -> str:
    return _SPACE.sub("", text)


def _cn_code(m: re.Match[str]) -> Code:
    family = _squash(m["family"])
    kind = m["kind"]
    number = m["number"]
    base = f"{family}/{kind}{number}" if kind else f"{family}{number}"
    return Code(m.start(), m.end(), base, f"{family}~{number}", m["year"])


def _intl_code(m: re.Match[str]) -> Code:
    family = _squash(m["family"])
    # "ISO/IEC 17025" and "ISO 17025" name the same document in everyday use.
    family = "iso" if family in ("iso/iec", "iso") else family
    number = m["number"] + (f"-{m['part']}" if m["part"] else "")
    base = f"{family}{number}"
    return Code(m.start(), m.end(), base, base, m["year"])


def _cnas_code(m: re.Match[str]) -> Code:
    number = re.sub(r"[‐‑‒–—―]", "-", _squash(m["number"]))
    base = f"{m['family']}-{number}"
    return Code(m.start(), m.end(), base, base, m["year"])


def find_codes(text: str) -> list[Code]:
    """All codes in a normalised (case-folded, NFKC) text, left to right, not overlapping."""
    found: list[Code] = []
    for pattern, build in ((_CNAS, _cnas_code), (_INTL, _intl_code), (_CN, _cn_code)):
        for m in pattern.finditer(text):
            code = build(m)
            if not any(code.start < c.end and c.start < code.end for c in found):
                found.append(code)
    return sorted(found, key=lambda c: c.start)


def split_codes(text: str) -> tuple[str, list[Code]]:
    """The text with every code replaced by a space (so the word segmenter never sees it)
    and the codes found."""
    codes = find_codes(text)
    if not codes:
        return text, []
    parts: list[str] = []
    last = 0
    for code in codes:
        parts.append(text[last : code.start])
        parts.append(" ")
        last = code.end
    parts.append(text[last:])
    return "".join(parts), codes


def canonicalize(text: str) -> str:
    """The text with every code written in its canonical spelling (for fuzzy comparison)."""
    codes = find_codes(text)
    if not codes:
        return text
    parts: list[str] = []
    last = 0
    for code in codes:
        parts.append(text[last : code.start])
        parts.append(f" {code.canonical} ")
        last = code.end
    parts.append(text[last:])
    return _SPACE.sub(" ", "".join(parts)).strip()


def looks_like_code(text: str) -> bool:
    """True when the normalised text contains at least one recognised code."""
    return bool(find_codes(text))
