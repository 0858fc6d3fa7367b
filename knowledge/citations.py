"""Which editions of standards and laws the knowledge base cites, and whether they are still current.

A knowledge-base answer is only as good as the edition it cites: GB 17167-2006 reads as
authoritative long after GB 17167-2025 replaced it, and nothing in the entry itself will ever
say so. ``data/citations.yaml`` records, for each standard or law the entries cite, its current
edition (and when that edition comes into force) and the editions it replaced. ``qibot kb
check`` then fails an entry that cites a replaced edition once the replacement is in force,
and warns while the replacement is published but not yet in force, so curators can plan the
change instead of discovering it from a user.

The parser works on raw entry text and is deliberately forgiving about spelling (full-width
characters, ``—`` or ``－`` before the year, ``ISO 9001:2015``, ``GB/T 29186.1～.6-2021``
ranges), because it reuses ``knowledge.codes``, the same code recogniser the retriever uses.
Law editions are recognised only when a revision is named next to the title, as in
``《中华人民共和国计量法》（2018年修正）``: a bare title means "the law as in force".

Pure: reads its own data file, imports nothing from the service.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from intents import yamlfile
from intents.yamlfile import TextDateLoader
from knowledge.codes import find_codes
from knowledge.entries import Entry
from knowledge.problems import Problem, Severity

CITATIONS_FILE = Path(__file__).parent / "data" / "citations.yaml"

# --- parsing ------------------------------------------------------------------------------------

_SLASH = re.compile(r"\s*/\s*")
_FAMILY = r"(?:gb/t|gb/z|gb|jjf|jjg|iso/iec|iso|iec|[a-z]{2}/t)"
# "gb/t 29186.1~.6-2021", "gb/t 29186.1~29186.6-2021", "gb/t 29186.1~gb/t 29186.6-2021",
# "gb/t 29186.1—.6—2021": the parts of one series sharing one year.
_RANGE = re.compile(
    rf"(?<![a-z0-9])(?P<family>{_FAMILY})\s*(?P<number>\d{{1,6}})\.(?P<first>\d{{1,3}})"
    rf"\s*(?:[~〜至到]|[-‐‑‒–—―](?=\s*\.))\s*(?:(?:{_FAMILY})\s*)?(?:(?P=number))?\.(?P<last>\d{{1,3}})"
    r"(?P<year>\s*(?:[-‐‑‒–—―~:])\s*(?:19|20)\d{2}(?!\d))"
)
# "gb/t 29186.1-2021~gb/t 29186.6-2021": first and last part written out with the same year.
_RANGE_FULL = re.compile(
    rf"(?<![a-z0-9])(?P<family>{_FAMILY})\s*(?P<number>\d{{1,6}})\.(?P<first>\d{{1,3}})"
    r"\s*[-‐‑‒–—―:]\s*(?P<y>(?:19|20)\d{2})\s*[~〜至到]\s*"
    rf"(?:(?P=family)\s*)?(?P=number)\.(?P<last>\d{{1,3}})(?P<year>\s*[-‐‑‒–—―:]\s*(?P=y)(?!\d))"
)
_MAX_RANGE = 30
_INTERNATIONAL = ("iso", "iec", "iatf")
_TRAILING_NUMBER = re.compile(r"(.*?)(\d[\d.]*(?:-\d+)?)$")
_LAW = re.compile(r"《(?P<title>[^《》]{2,60})》\s*[（(](?P<paren>[^（）()《》]{1,60})[）)]")
_LAW_PIECE = re.compile(r"[，,、；;]")
_REVISION = re.compile(r"修订|修正|修改|版")
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
_LAW_PREFIX = "中华人民共和国"


@dataclass(frozen=True, slots=True)
class Edition:
    """One dated edition of a standard or law, as found in a text.

    ``work`` identifies the document across editions (``gb/t29188``, ``law:计量法``) and ``key``
    the edition (``gb/t29188@2012``); both are canonical, so every spelling of the same edition
    compares equal. ``text`` is how it was written, for messages.
    """

    work: str
    year: str
    text: str

    @property
    def key(self) -> str:
        return f"{self.work}@{self.year}"


def law_work(title: str) -> str:
    """Canonical identity of a law or regulation: 《中华人民共和国计量法》 and 《计量法》 are one work."""
    name = re.sub(r"\s+", "", unicodedata.normalize("NFKC", title).strip("《》"))
    return "law:" + name.removeprefix(_LAW_PREFIX)


def _expand_ranges(text: str) -> str:
    """Write every part of a range out, so the code recogniser sees each one with its year."""

    def expand(m: re.Match[str]) -> str:
        first, last = int(m["first"]), int(m["last"])
        if not first <= last <= first + _MAX_RANGE:
            return m.group(0)
        year = m["year"].strip().lstrip("-‐‑‒–—―~:").strip()
        return "、".join(f"{m['family']} {m['number']}.{part}-{year}" for part in range(first, last + 1))

    return _RANGE.sub(expand, _RANGE_FULL.sub(expand, text))


def _pretty(base: str, year: str) -> str:
    """``gb/t29188`` + 2012 → ``GB/T 29188-2012``; ``iso9001`` + 2015 → ``ISO 9001:2015``."""
    m = _TRAILING_NUMBER.match(base)
    family, number = (m[1], m[2]) if m else (base, "")
    mark = ":" if family.startswith(_INTERNATIONAL) else "-"
    return f"{family.upper()} {number}{mark}{year}"


def _code_editions(text: str) -> Iterator[Edition]:
    folded = _SLASH.sub("/", unicodedata.normalize("NFKC", text).casefold())
    for code in find_codes(_expand_ranges(folded)):
        if code.year:
            yield Edition(code.base, code.year, _pretty(code.base, code.year))


def _law_editions(text: str) -> Iterator[Edition]:
    for m in _LAW.finditer(unicodedata.normalize("NFKC", text)):
        years = [
            year.group(1)
            for piece in _LAW_PIECE.split(m["paren"])
            if _REVISION.search(piece)
            for year in [_YEAR.search(piece)]
            if year is not None
        ]
        if years:
            yield Edition(law_work(m["title"]), max(years), m.group(0))


def identifier_work(identifier: str) -> str | None:
    """The work an undated identifier names (``GB 17167`` → ``gb17167``), or None if it names none."""
    if identifier.lstrip().startswith("《"):
        return law_work(identifier)
    codes = find_codes(_SLASH.sub("/", unicodedata.normalize("NFKC", identifier).casefold()))
    return codes[0].base if len(codes) == 1 else None


def find_editions(text: str) -> list[Edition]:
    """Every dated edition a text cites: standard codes with a year, and laws with a revision year."""
    found: dict[str, Edition] = {}
    for edition in (*_code_editions(text), *_law_editions(text)):
        found.setdefault(edition.key, edition)
    return list(found.values())


# --- the data file ------------------------------------------------------------------------------

_FIELDS = (
    "identifier", "title", "current", "published", "in_force", "replaced", "expected", "note", "source", "uncertain"
)


@dataclass(frozen=True, slots=True)
class Record:
    """One standard or law: its current edition(s) and the editions they replaced."""

    identifier: str
    current: str
    current_keys: frozenset[str]
    replaced: tuple[Edition, ...]
    in_force: dt.date | None  # None: the current edition has long been in force
    expected: tuple[Edition, ...] = ()  # announced, not yet published: an entry may say it is coming
    published: dt.date | None = None
    title: str | None = None
    note: str | None = None
    source: str | None = None
    uncertain: bool = False

    def in_force_on(self, day: dt.date) -> bool:
        return self.in_force is None or self.in_force <= day


@dataclass(frozen=True, slots=True)
class Citations:
    """The registry: every record, and lookups by replaced and by known edition."""

    records: tuple[Record, ...]
    file: str = "citations.yaml"

    @property
    def replaced_by(self) -> dict[str, Record]:
        return {edition.key: record for record in self.records for edition in record.replaced}

    @property
    def known(self) -> frozenset[str]:
        keys: set[str] = set()
        for record in self.records:
            keys.update(record.current_keys)
            keys.update(edition.key for edition in (*record.replaced, *record.expected))
        return frozenset(keys)


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_record(raw: Any, file: str) -> tuple[Record | None, list[Problem]]:
    """Validate one record of the data file strictly: a record the check cannot trust is refused."""
    if not isinstance(raw, dict):
        return None, [Problem(file, None, "error", f"a citation record must be a mapping, got {type(raw).__name__}")]
    identifier = _text(raw.get("identifier"))
    where = identifier or repr(raw.get("identifier"))
    problems: list[Problem] = []

    def err(message: str) -> None:
        problems.append(Problem(file, where, "error", message))

    if identifier is None:
        err("identifier must be a non-empty string")
    for key in raw:
        if key not in _FIELDS:
            err(f"unknown field '{key}'")
    current = _text(raw.get("current"))
    current_editions = find_editions(current) if current else []
    if current is None:
        err("current must be a non-empty string (the edition in force, or about to be)")
    elif not current_editions:
        err(f"current {current!r} names no dated edition (e.g. 'GB 17167-2025', '《计量法》（2018年修正）')")
    replaced_raw = raw.get("replaced", [])
    replaced: list[Edition] = []
    if not isinstance(replaced_raw, list) or not all(isinstance(r, str) for r in replaced_raw):
        err("replaced must be a list of editions (strings)")
    else:
        for text in replaced_raw:
            found = find_editions(text)
            if len(found) != 1:
                err(f"replaced edition {text!r} must name exactly one dated edition")
            elif found[0].key in {e.key for e in current_editions}:
                err(f"{text!r} is both current and replaced")
            else:
                replaced.append(found[0])
    if identifier is not None and current_editions:
        work = identifier_work(identifier)
        works = {e.work for e in (*current_editions, *replaced)}
        if work is None:
            err(f"identifier {identifier!r} is not a standard code or a 《title》")
        elif work not in works:
            err(f"identifier {identifier!r} matches neither the current nor a replaced edition")
    expected: list[Edition] = []
    expected_raw = raw.get("expected", [])
    if not isinstance(expected_raw, list) or not all(isinstance(r, str) for r in expected_raw):
        err("expected must be a list of editions (strings)")
    else:
        for text in expected_raw:
            found = find_editions(text)
            if len(found) != 1:
                err(f"expected edition {text!r} must name exactly one dated edition")
            else:
                expected.append(found[0])
    dates: dict[str, dt.date | None] = {}
    for key in ("published", "in_force"):
        value = raw.get(key)
        dates[key] = _date(value) if value is not None else None
        if value is not None and dates[key] is None:
            err(f"{key} {value!r} is not a date (YYYY-MM-DD)")
    for key in ("title", "note", "source"):
        if key in raw and _text(raw[key]) is None:
            err(f"{key} must be a non-empty string when present")
    uncertain = raw.get("uncertain", False)
    if not isinstance(uncertain, bool):
        err(f"uncertain must be true or false, got {uncertain!r}")
    if uncertain and _text(raw.get("note")) is None:
        err("an uncertain record needs a note saying what is uncertain")
    if problems:
        return None, problems
    assert identifier is not None and current is not None
    record = Record(
        identifier=identifier,
        title=_text(raw.get("title")),
        current=current,
        current_keys=frozenset(e.key for e in current_editions),
        replaced=tuple(replaced),
        expected=tuple(expected),
        in_force=dates["in_force"],
        published=dates["published"],
        note=_text(raw.get("note")),
        source=_text(raw.get("source")),
        uncertain=uncertain,
    )
    return record, problems


def read_citations(path: Path | str | None = None) -> tuple[Citations, list[Problem]]:
    """The registry and the problems of its file (never raises; a broken file gives an empty registry
    plus errors, so ``kb check`` fails loudly instead of silently checking nothing)."""
    source = Path(path) if path is not None else CITATIONS_FILE
    name = source.name
    try:
        data = yamlfile.read(source, TextDateLoader)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        return Citations((), name), [Problem(name, None, "error", f"cannot read YAML: {exc}".replace("\n", " "))]
    if not isinstance(data, list):
        return Citations((), name), [Problem(name, None, "error", "the file must be a YAML list of citation records")]
    records: list[Record] = []
    problems: list[Problem] = []
    owner: dict[str, str] = {}
    for raw in data:
        record, found = parse_record(raw, name)
        problems.extend(found)
        if record is None:
            continue
        for edition in record.replaced:
            if edition.key in owner:
                message = f"{edition.text} is also replaced in {owner[edition.key]}"
                problems.append(Problem(name, record.identifier, "error", message))
            owner[edition.key] = record.identifier
        records.append(record)
    return Citations(tuple(records), name), problems


# --- the check ----------------------------------------------------------------------------------


def _cited_text(entry: Entry) -> str:
    """What an entry asserts: the answer, the detail and the basis (questions are how users ask,
    and may well name an old edition)."""
    return "\n".join(part for part in (entry.answer, entry.detail, entry.basis) if part)


def _since(record: Record) -> str:
    return f" (in force since {record.in_force.isoformat()})" if record.in_force else ""


Kind = Literal["superseded", "pending", "unlisted"]


@dataclass(frozen=True, slots=True)
class Finding:
    """A citation problem and its kind, so ``kb check`` can count kinds in its summary."""

    kind: Kind
    problem: Problem


def _entry_findings(
    entry: Entry, citations: Citations, replaced_by: dict[str, Record], known: frozenset[str], today: dt.date
) -> Iterator[Finding]:
    def finding(kind: Kind, severity: Severity, message: str) -> Finding:
        return Finding(kind, Problem(entry.file, entry.id, severity, message))

    cited = find_editions(_cited_text(entry))
    keys = {edition.key for edition in cited}
    for edition in cited:
        record = replaced_by.get(edition.key)
        if record is None:
            if edition.key not in known:
                yield finding(
                    "unlisted",
                    "warning",
                    f"cites {edition.text}, which {citations.file} does not list: add its current and replaced "
                    "editions so the check can tell when it goes stale",
                )
            continue
        explained = bool(keys & record.current_keys)  # the entry names the new edition too
        hedge = f" [uncertain: {record.note}]" if record.uncertain else ""
        if record.in_force_on(today):
            if not explained:
                severity: Severity = "warning" if record.uncertain else "error"
                message = f"cites {edition.text}, replaced by {record.current}{_since(record)}{hedge}"
                yield finding("superseded", severity, message)
            elif record.in_force is not None and entry.checked < record.in_force:
                yield finding(
                    "superseded",
                    "warning",
                    f"cites {edition.text} beside {record.current}, which came into force on "
                    f"{record.in_force.isoformat()}, after this entry was checked: re-check the wording",
                )
        else:
            assert record.in_force is not None
            due = record.in_force.isoformat()
            if not explained:
                yield finding(
                    "pending",
                    "warning",
                    f"cites {edition.text}; {record.current} replaces it from {due}: update the entry by then{hedge}",
                )
            elif entry.review_by is None or entry.review_by > record.in_force:
                yield finding(
                    "pending",
                    "warning",
                    f"explains the change from {edition.text} to {record.current} (in force {due}): "
                    f"set review_by to {due} or earlier so the wording is re-checked then",
                )


def citation_findings(
    entries: Iterable[Entry], today: dt.date | None = None, citations: Citations | None = None
) -> tuple[list[Finding], list[Problem]]:
    """Citation findings of parsed entries, and the problems of the registry file itself
    (read from ``data/citations.yaml`` unless a registry is given)."""
    day = today or dt.date.today()
    file_problems: list[Problem] = []
    if citations is None:
        citations, file_problems = read_citations()
    replaced_by, known = citations.replaced_by, citations.known
    findings = [f for entry in entries for f in _entry_findings(entry, citations, replaced_by, known, day)]
    return findings, file_problems


def check_citations(
    entries: Iterable[Entry], today: dt.date | None = None, citations: Citations | None = None
) -> list[Problem]:
    """Citation problems of parsed entries, registry-file problems first."""
    findings, problems = citation_findings(entries, today, citations)
    return problems + [f.problem for f in findings]
