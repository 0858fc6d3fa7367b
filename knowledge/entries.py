"""Knowledge entries: the data model and the validated loading of the YAML files.

Content is reviewed like code and changes without a code change, so loading is strict about
structure (every field present with the right type, a known domain, a real date, unique ids):
whatever reaches the retriever can be indexed and shown. Content *rules* (how many phrasings,
answer length, basis quality, overlaps between entries) are the linter's job, see ``lint``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from intents import yamlfile
from intents.labels import DOMAINS as SERVICE_DOMAINS
from intents.yamlfile import TextDateLoader
from knowledge.problems import KnowledgeBaseError, Problem, errors

#: The seven service domains of the NLU, plus entries about the platform itself.
DOMAINS: tuple[str, ...] = (*SERVICE_DOMAINS, "platform")
ENTRIES_DIR = Path(__file__).parent / "data" / "entries"

_ID = re.compile(r"^[a-z]+\.[a-z0-9]+(?:-[a-z0-9]+)*$")
_REQUIRED = ("id", "domain", "title", "questions", "answer", "basis", "tags", "checked")
#: Optional fields: a longer answer, and for a fact that moves, the date by which it must be
#: re-checked (``review_by``) and what to watch meanwhile (``watch``: a draft law, a transition).
_KNOWN = (*_REQUIRED, "detail", "review_by", "watch")


@dataclass(frozen=True, slots=True)
class Entry:
    """One answerable question: its phrasings, the chat-sized answer and where it comes from."""

    id: str
    domain: str
    title: str
    questions: tuple[str, ...]
    answer: str
    detail: str | None
    basis: str
    tags: tuple[str, ...]
    checked: dt.date
    file: str = field(default="", compare=False)
    review_by: dt.date | None = None
    watch: str | None = None

    @property
    def phrasings(self) -> tuple[str, ...]:
        """Everything a user might type for this entry: the title and the questions."""
        return (self.title, *self.questions)


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
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


def _texts(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        return None
    return tuple(str(v).strip() for v in value if str(v).strip())


def parse_entry(raw: Any, file: str, today: dt.date | None = None) -> tuple[Entry | None, list[Problem]]:
    """Validate one YAML mapping; the entry is None when it cannot be indexed."""
    if not isinstance(raw, dict):
        return None, [Problem(file, None, "error", f"an entry must be a mapping, got {type(raw).__name__}")]
    entry_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    problems: list[Problem] = []

    def err(message: str) -> None:
        problems.append(Problem(file, entry_id, "error", message))

    def warn(message: str) -> None:
        problems.append(Problem(file, entry_id, "warning", message))

    for key in _REQUIRED:
        if key not in raw or raw[key] is None:
            err(f"missing required field '{key}'")
    for key in raw:
        if key not in _KNOWN:
            warn(f"unknown field '{key}'")
    if problems and any(p.severity == "error" for p in problems):
        return None, problems

    if entry_id is None or not _ID.match(entry_id):
        err(f"id {raw.get('id')!r} is not '<domain>.<kebab-case-slug>' in lower-case ASCII")
    domain = raw["domain"]
    if domain not in DOMAINS:
        err(f"domain {domain!r} is not one of {', '.join(DOMAINS)}")
    elif entry_id and not entry_id.startswith(f"{domain}."):
        warn(f"id does not start with its domain '{domain}.'")
    title, answer, basis = _text(raw["title"]), _text(raw["answer"]), _text(raw["basis"])
    if title is None:
        err("title must be a non-empty string")
    if answer is None:
        err("answer must be a non-empty string")
    if basis is None:
        err("basis is empty: name the law, regulation, standard or official platform")
    detail = raw.get("detail")
    if detail is not None and _text(detail) is None:
        err("detail must be a non-empty string when present")
    questions = _texts(raw["questions"])
    if not questions:
        err("questions must be a non-empty list of strings")
    tags = _texts(raw["tags"])
    if tags is None:
        err("tags must be a list of strings")
    checked = _as_date(raw["checked"])
    if checked is None:
        err(f"checked {raw['checked']!r} is not a date (YYYY-MM-DD)")
    elif checked > (today or dt.date.today()):
        err(f"checked date {checked.isoformat()} is in the future")
    review_by: dt.date | None = None
    if raw.get("review_by") is not None:
        review_by = _as_date(raw["review_by"])
        if review_by is None:
            err(f"review_by {raw['review_by']!r} is not a date (YYYY-MM-DD)")
    elif "review_by" in raw:
        err("review_by must be a date (YYYY-MM-DD) when present")
    watch = raw.get("watch")
    if "watch" in raw and _text(watch) is None:
        err("watch must be a non-empty string when present")
    if any(p.severity == "error" for p in problems):
        return None, problems
    assert entry_id and title and answer and basis and questions is not None and tags is not None
    assert checked is not None
    entry = Entry(
        id=entry_id,
        domain=domain,
        title=title,
        questions=questions,
        answer=answer,
        detail=_text(detail),
        basis=basis,
        tags=tags,
        checked=checked,
        file=file,
        review_by=review_by,
        watch=_text(watch),
    )
    return entry, problems


def yaml_files(directory: Path) -> list[Path]:
    """The entry files of a directory, in a stable order."""
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def read_file(path: Path, today: dt.date | None = None) -> tuple[list[Entry], list[Problem]]:
    """All valid entries of one file and the problems found in it."""
    name = path.name
    try:
        data = yamlfile.read(path, TextDateLoader)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        return [], [Problem(name, None, "error", f"cannot read YAML: {exc}".replace("\n", " "))]
    if data is None:
        return [], [Problem(name, None, "warning", "file is empty")]
    if not isinstance(data, list):
        return [], [Problem(name, None, "error", "the file must be a YAML list of entries")]
    entries: list[Entry] = []
    problems: list[Problem] = []
    for raw in data:
        entry, found = parse_entry(raw, name, today)
        problems.extend(found)
        if entry is not None:
            entries.append(entry)
    return entries, problems


def duplicate_ids(entries: Iterable[Entry]) -> Iterator[Problem]:
    """Ids must be unique across all files: the service and the logs refer to entries by id."""
    first: dict[str, Entry] = {}
    for entry in entries:
        if entry.id in first:
            yield Problem(entry.file, entry.id, "error", f"duplicate id (also in {first[entry.id].file})")
        else:
            first[entry.id] = entry


def read_directory(
    directory: Path | str | None = None, today: dt.date | None = None
) -> tuple[list[Entry], list[Problem]]:
    """Every valid entry of a directory and every structural problem (never raises)."""
    root = Path(directory) if directory is not None else ENTRIES_DIR
    if not root.is_dir():
        return [], [Problem(str(root), None, "error", "entries directory does not exist")]
    entries: list[Entry] = []
    problems: list[Problem] = []
    for path in yaml_files(root):
        found_entries, found = read_file(path, today)
        entries.extend(found_entries)
        problems.extend(found)
    problems.extend(duplicate_ids(entries))
    if not entries and not errors(problems):
        problems.append(Problem(str(root), None, "error", "no entries found"))
    return entries, problems


def load_entries(directory: Path | str | None = None) -> list[Entry]:
    """All entries of a directory; raises KnowledgeBaseError when any of them is broken."""
    entries, problems = read_directory(directory)
    if errors(problems):
        raise KnowledgeBaseError(problems)
    return entries
