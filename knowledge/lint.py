"""``qibot kb check``: the content rules of the knowledge base, reported as ``Problem`` records.

Loading only refuses content that cannot be indexed (see ``entries``). The linter also holds
the content to the rules curators agreed on, because retrieval quality depends on them: enough
phrasings (one Traditional) to match how people ask, no phrasing shared by two entries (the
retriever could not tell them apart), chat-sized answers, and a basis that names a law,
standard or official platform (a wrong legal answer without a source is worse than none).

It also notices facts going stale ("Staying correct"): an entry not checked for a year, an
entry whose ``review_by`` date has passed, and (see ``citations``) an entry citing an edition
of a standard or law that a newer one has replaced or is about to replace.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import opencc
from rapidfuzz import fuzz, process

from intents.normalize import detect_script, normalize
from knowledge.citations import Citations, citation_findings
from knowledge.codes import canonicalize, looks_like_code
from knowledge.entries import Entry, read_directory
from knowledge.problems import Problem

MIN_QUESTIONS = 4
MAX_ANSWER = 300
MAX_DETAIL = 800
NEAR_DUPLICATE = 92  # rapidfuzz ratio at which two phrasings of different entries collide
STALE_DAYS = 365  # facts move (new editions, amended laws): re-check every entry at least yearly

# Official sources a basis may name instead of a law or standard.
OFFICIAL_SOURCES = (
    "全国标准信息公共服务平台",
    "企业标准信息公共服务平台",
    "全国团体标准信息平台",
    "国家知识产权局",
    "中国商标网",
    "全国认证认可信息公共服务平台",
    "检验检测机构资质认定",
    "市场监管总局",
    "国家市场监督管理总局",
    "国家认证认可监督管理委员会",
    "认监委",
    "中国合格评定国家认可委员会",
    "国家标准化管理委员会",
    "国务院",
    "商务部",
    "国家版权局",
    "中国版权保护中心",
    "福建省市场监督管理局",
    "厦门市市场监督管理局",
    "质量基础设施协同服务平台",
)
_OFFICIAL_HOST = re.compile(r"(?:^|\.)(?:gov\.cn|cnas\.org\.cn|cnca\.cn|ttbz\.org\.cn|ccpc\.cn)$")
_BOOK_TITLE = re.compile(r"《[^《》]+》")
# Foreign acts and standards an export entry may rest on: 2011/65/EU, (EC) No 1907/2006, EN 71.
_FOREIGN_ACT = re.compile(
    r"\d{2,4}/\d{1,4}/(?:EC|EU|EEC)|(?:EC|EU|EEC)\)?\s*No\.?\s*\d{1,4}/\d{4}|(?<![A-Za-z])EN\s?\d{2,5}|CFR|CPSIA"
)
_URL = re.compile(r"https?://[^\s，。；;）)]+")
_NOT_WORD = re.compile(r"[\W_]+")


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


@lru_cache(maxsize=65536)
def phrasing_key(text: str) -> str:
    """Identity of a phrasing for duplicate detection: normalised, codes canonical, no punctuation.
    Cached: the console's check of an edit keys every phrasing of the base on each preview."""
    return _NOT_WORD.sub("", canonicalize(normalize(text).text))


def is_traditional(text: str) -> bool:
    """Written in Traditional characters: ``detect_script`` says so, or the text uses a character
    that only Traditional has (``detect_script`` counts characters such as 才, which OpenCC's s2t
    turns into the variant 纔, as Simplified-only, so a short Traditional question with one
    Traditional-only character can tie and read as Simplified)."""
    return detect_script(text) == "hant" or to_simplified(text) != text


def _basis_problems(entry: Entry) -> Iterator[Problem]:
    basis = entry.basis
    named = (
        _BOOK_TITLE.search(basis)
        or looks_like_code(normalize(basis).text)
        or _FOREIGN_ACT.search(unicodedata.normalize("NFKC", basis))
        or any(name in basis for name in OFFICIAL_SOURCES)
    )
    if not named:
        yield Problem(
            entry.file, entry.id, "error", "basis names no 《law/standard》, standard code or official platform"
        )
    if basis.count("《") != basis.count("》"):
        yield Problem(entry.file, entry.id, "warning", "basis has unbalanced 《》")
    for url in _URL.findall(basis):
        host = (urlparse(url).hostname or "").lower()
        if not _OFFICIAL_HOST.search(host):
            yield Problem(entry.file, entry.id, "warning", f"basis links to a non-official host: {host}")


def _is_stale(entry: Entry, today: dt.date) -> bool:
    return (today - entry.checked).days > STALE_DAYS


def _review_due(entry: Entry, today: dt.date) -> bool:
    return entry.review_by is not None and entry.review_by < today


def _freshness_problems(entry: Entry, today: dt.date) -> Iterator[Problem]:
    if _is_stale(entry, today):
        message = f"checked {entry.checked.isoformat()}: more than a year ago, re-check the facts"
        yield Problem(entry.file, entry.id, "warning", message)
    if _review_due(entry, today):
        assert entry.review_by is not None
        watch = f" (watch: {entry.watch})" if entry.watch else ""
        message = f"review_by {entry.review_by.isoformat()} has passed: re-check the facts{watch}, then update checked"
        yield Problem(entry.file, entry.id, "warning", message + " and review_by")


def _entry_problems(entry: Entry, today: dt.date) -> Iterator[Problem]:
    def err(message: str) -> Problem:
        return Problem(entry.file, entry.id, "error", message)

    def warn(message: str) -> Problem:
        return Problem(entry.file, entry.id, "warning", message)

    if len(entry.questions) < MIN_QUESTIONS:
        yield err(f"{len(entry.questions)} question phrasing(s); at least {MIN_QUESTIONS} are required")
    if not any(is_traditional(q) for q in entry.questions):
        yield err("no question phrasing in Traditional Chinese")
    if len(entry.answer) > MAX_ANSWER:
        yield err(f"answer has {len(entry.answer)} characters; the limit is {MAX_ANSWER} (move the rest to detail)")
    if detect_script(entry.answer) == "hant":
        yield err("answer is in Traditional Chinese; answers are stored Simplified")
    if detect_script(entry.title) == "hant":
        yield warn("title is in Traditional Chinese; titles are stored Simplified")
    if entry.detail is not None and len(entry.detail) > MAX_DETAIL:
        yield warn(f"detail has {len(entry.detail)} characters; keep it under about {MAX_DETAIL}")
    if not entry.tags:
        yield warn("no tags")
    yield from _freshness_problems(entry, today)
    yield from _basis_problems(entry)
    seen: dict[str, str] = {phrasing_key(entry.title): "the title"}
    for q in entry.questions:
        key = phrasing_key(q)
        if key in seen:
            yield warn(f"phrasing {q!r} repeats {seen[key]} after normalisation")
        else:
            seen[key] = repr(q)


def _cross_entry_problems(entries: Sequence[Entry]) -> Iterator[Problem]:
    owners: dict[str, Entry] = {}
    texts: list[str] = []
    owner_of: list[Entry] = []
    raw: list[str] = []
    for entry in entries:
        own: set[str] = set()
        for phrasing in entry.phrasings:
            key = phrasing_key(phrasing)
            if not key or key in own:
                continue
            own.add(key)
            other = owners.get(key)
            if other is not None and other.id != entry.id:
                yield Problem(
                    entry.file,
                    entry.id,
                    "error",
                    f"phrasing {phrasing!r} is identical (after normalisation) to one of {other.id}",
                )
                continue
            owners[key] = entry
            texts.append(key)
            owner_of.append(entry)
            raw.append(phrasing)
    if len(texts) < 2:
        return
    scores = process.cdist(texts, texts, scorer=fuzz.ratio, score_cutoff=NEAR_DUPLICATE, dtype="uint8", workers=-1)
    rows, cols = scores.nonzero()
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        if i < j and owner_of[i].id != owner_of[j].id:
            a, b = owner_of[i], owner_of[j]
            yield Problem(
                b.file,
                b.id,
                "warning",
                f"phrasing {raw[j]!r} is near-identical ({scores[i, j]}) to {raw[i]!r} of {a.id}",
            )


def check_entries(entries: Sequence[Entry], today: dt.date | None = None) -> list[Problem]:
    """Content-rule problems of already-parsed entries (citations are checked by ``run``)."""
    day = today or dt.date.today()
    problems: list[Problem] = []
    for entry in entries:
        problems.extend(_entry_problems(entry, day))
    problems.extend(_cross_entry_problems(entries))
    return problems


def check_edit(
    entry: Entry, others: Sequence[Entry], today: dt.date | None = None, citations: Citations | None = None
) -> list[Problem]:
    """The problems of one entry edited in the console, against the rest of the content: its own
    rules, phrasings identical or near-identical to another entry's, and its citations.

    The same rules as ``run``, but only the pairs that involve this entry are compared: the whole
    base's cross check costs over a second (446 entries), which a form's preview must not."""
    day = today or dt.date.today()
    problems = list(_entry_problems(entry, day))
    owner: dict[str, Entry] = {}
    texts: list[str] = []
    raw: list[str] = []
    for other in others:
        if other.id == entry.id:
            continue
        for phrasing in other.phrasings:
            key = phrasing_key(phrasing)
            if key and key not in owner:
                owner[key] = other
                texts.append(key)
                raw.append(phrasing)
    mine: list[tuple[str, str]] = []
    for phrasing in entry.phrasings:
        key = phrasing_key(phrasing)
        if not key or any(key == k for k, _ in mine):
            continue
        if (twin := owner.get(key)) is not None:
            problems.append(Problem(entry.file, entry.id, "error",
                                    f"phrasing {phrasing!r} is identical (after normalisation) to one of {twin.id}"))
        else:
            mine.append((key, phrasing))
    if mine and texts:
        scores = process.cdist([k for k, _ in mine], texts, scorer=fuzz.ratio, score_cutoff=NEAR_DUPLICATE,
                               dtype="uint8", workers=1)
        rows, cols = scores.nonzero()
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            problems.append(Problem(entry.file, entry.id, "warning",
                                    f"phrasing {mine[i][1]!r} is near-identical ({scores[i, j]}) to "
                                    f"{raw[j]!r} of {owner[texts[j]].id}"))
    findings, _ = citation_findings([entry], day, citations)
    problems.extend(f.problem for f in findings)
    return problems


@dataclass(slots=True)
class Report:
    """Everything ``kb check`` found, with the counts its one-line summary reports."""

    problems: list[Problem] = field(default_factory=list)
    entries: int = 0
    superseded: int = 0  # cites a replaced edition
    pending: int = 0  # cites an edition whose replacement is published but not yet in force
    unlisted: int = 0  # cites a dated edition citations.yaml does not know
    review_due: int = 0  # review_by has passed
    stale: int = 0  # not checked for more than a year

    @property
    def errors(self) -> int:
        return sum(p.severity == "error" for p in self.problems)

    @property
    def warnings(self) -> int:
        return len(self.problems) - self.errors

    def summary(self) -> str:
        return (
            f"{self.errors} error(s), {self.warnings} warning(s) in {self.entries} entries; "
            f"citations: {self.superseded} superseded, {self.pending} replacement pending, "
            f"{self.unlisted} unlisted; {self.review_due} past review_by, {self.stale} checked over a year ago"
        )


def run(
    directory: Path | str | None = None, today: dt.date | None = None, citations: Citations | None = None
) -> Report:
    """Every problem of a directory of entry files: structure, content rules, then citations
    (against ``data/citations.yaml`` unless a registry is given)."""
    day = today or dt.date.today()
    entries, problems = read_directory(directory, day)
    findings, registry_problems = citation_findings(entries, day, citations)
    report = Report(problems + registry_problems + check_entries(entries, day), entries=len(entries))
    report.problems.extend(f.problem for f in findings)
    report.superseded = sum(f.kind == "superseded" for f in findings)
    report.pending = sum(f.kind == "pending" for f in findings)
    report.unlisted = sum(f.kind == "unlisted" for f in findings)
    report.review_due = sum(_review_due(e, day) for e in entries)
    report.stale = sum(_is_stale(e, day) for e in entries)
    return report


def check(
    directory: Path | str | None = None, today: dt.date | None = None, citations: Citations | None = None
) -> list[Problem]:
    """Every problem of a directory of entry files (see ``run``)."""
    return run(directory, today, citations).problems


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m knowledge.lint [DIR]``: print problems, exit 1 when there are errors."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    report = run(args[0] if args else None)
    for p in report.problems:
        print(p)
    print(report.summary())
    return 1 if report.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
