"""Edits made in the staff console, laid over the bundled (or ``QIBOT_KB_DIR``) content.

The YAML files stay the base, reviewed like code; an edit is an *overlay* keyed by entry id: a
new entry, a changed entry (same id as a base entry: it replaces it) or a retired entry (the id
is taken out). The service keeps the overlays in its database, the source of truth shared by all
its workers (``bot.services.kb_edits``); this module is the pure part: turning a form's fields
into the raw mapping ``entries.parse_entry`` validates, an entry back into those fields, and
applying an overlay to a list of entries.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from knowledge.entries import Entry

#: The "file" an entry edited in the console reports its problems under.
CONSOLE_FILE = "console"
#: Form fields whose value is a list: one item per line (tags may also be separated by commas).
_TAG_SPLIT = re.compile(r"[\n,，、;；]+")

Overlay = Mapping[str, Entry | None]  # entry id -> the entry to serve, or None: retired


def apply_overlay(entries: Sequence[Entry], overlay: Overlay | None) -> list[Entry]:
    """The base entries with the overlay applied: changed ones replaced in place, retired ones
    removed, new ones appended in id order (a stable order keeps the index reproducible)."""
    if not overlay:
        return list(entries)
    seen: set[str] = set()
    result: list[Entry] = []
    for entry in entries:
        seen.add(entry.id)
        if entry.id not in overlay:
            result.append(entry)
        elif (replacement := overlay[entry.id]) is not None:
            result.append(replacement)
    result.extend(e for i, e in sorted(overlay.items()) if e is not None and i not in seen)
    return result


def raw_from_form(fields: Mapping[str, str]) -> dict[str, Any]:
    """The YAML-shaped mapping of a console form (questions one per line; tags one per line or
    separated by commas), for ``parse_entry``: the same validation as a content file."""
    raw: dict[str, Any] = {
        "id": fields.get("id", "").strip(),
        "domain": fields.get("domain", "").strip(),
        "title": fields.get("title", ""),
        "questions": [line.strip() for line in fields.get("questions", "").splitlines() if line.strip()],
        "answer": fields.get("answer", ""),
        "basis": fields.get("basis", ""),
        "tags": [t.strip() for t in _TAG_SPLIT.split(fields.get("tags", "")) if t.strip()],
        "checked": fields.get("checked", "").strip(),
    }
    for optional in ("detail", "review_by", "watch"):
        value = fields.get(optional, "").strip()
        if value:
            raw[optional] = value
    return raw


def form_from_entry(entry: Entry) -> dict[str, str]:
    """The console form's fields of an entry (the inverse of ``raw_from_form``)."""
    return {
        "id": entry.id,
        "domain": entry.domain,
        "title": entry.title,
        "questions": "\n".join(entry.questions),
        "answer": entry.answer,
        "detail": entry.detail or "",
        "basis": entry.basis,
        "tags": "\n".join(entry.tags),
        "checked": entry.checked.isoformat(),
        "review_by": entry.review_by.isoformat() if entry.review_by else "",
        "watch": entry.watch or "",
    }


def to_raw(entry: Entry) -> dict[str, Any]:
    """An entry as the JSON-able mapping it is stored as (the shape of a YAML entry)."""
    raw: dict[str, Any] = {
        "id": entry.id, "domain": entry.domain, "title": entry.title, "questions": list(entry.questions),
        "answer": entry.answer, "basis": entry.basis, "tags": list(entry.tags), "checked": entry.checked.isoformat(),
    }
    if entry.detail:
        raw["detail"] = entry.detail
    if entry.review_by:
        raw["review_by"] = entry.review_by.isoformat()
    if entry.watch:
        raw["watch"] = entry.watch
    return raw


def digest(raw: Mapping[str, Any]) -> str:
    """A short fingerprint of an entry's content: the console publishes only what was previewed."""
    text = json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


__all__ = ["CONSOLE_FILE", "Overlay", "apply_overlay", "digest", "form_from_entry", "raw_from_form", "to_raw"]
