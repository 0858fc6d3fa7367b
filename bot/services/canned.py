"""Canned replies (常用回复): a short list of titled texts commissioners pick from on the case page,
kept by managers. The bundled ``bot/data/canned_replies.yaml`` is the default; the managers'
edited list lives in the data directory (``canned_replies.yaml``) and replaces it, written
atomically so a reader never sees half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from intents import yamlfile

BUNDLED = Path(__file__).resolve().parent.parent / "data" / "canned_replies.yaml"
INSTALLED_NAME = "canned_replies.yaml"
MAX_ENTRIES, MAX_TITLE, MAX_TEXT = 100, 20, 500


class CannedError(ValueError):
    """The list cannot be saved; the message (Chinese, for staff) says which entry and why."""


@dataclass(frozen=True, slots=True)
class Canned:
    title: str
    text: str


def _parse(data: Any, where: str) -> list[Canned]:
    if not isinstance(data, list):
        raise CannedError(f"{where}：应为条目列表")
    found = []
    for index, item in enumerate(data, 1):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("title", "text")):
            raise CannedError(f"{where} 第 {index} 条：需要 title 和 text")
        found.append(Canned(item["title"], item["text"]))
    return validate(found)


def validate(entries: Sequence[Canned]) -> list[Canned]:
    """Trimmed entries; empty rows dropped; each title unique and short, each text bounded."""
    kept: list[Canned] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, 1):
        title, text = " ".join(entry.title.split()), entry.text.strip()
        if not title and not text:
            continue
        if not title or not text:
            raise CannedError(f"第 {index} 条：标题和内容都要填写")
        if len(title) > MAX_TITLE or len(text) > MAX_TEXT:
            raise CannedError(f"第 {index} 条：标题不超过 {MAX_TITLE} 字，内容不超过 {MAX_TEXT} 字")
        if title in seen:
            raise CannedError(f"第 {index} 条：标题“{title}”重复")
        seen.add(title)
        kept.append(Canned(title, text))
    if len(kept) > MAX_ENTRIES:
        raise CannedError(f"最多 {MAX_ENTRIES} 条")
    return kept


def load(data_dir: Path) -> list[Canned]:
    """The managers' list if they saved one, else the bundled default."""
    path = data_dir / INSTALLED_NAME
    source = path if path.is_file() else BUNDLED
    return _parse(yamlfile.read(source) or [], source.name)


def save(data_dir: Path, entries: Sequence[Canned]) -> list[Canned]:
    kept = validate(entries)
    text = yaml.safe_dump([{"title": e.title, "text": e.text} for e in kept], allow_unicode=True, sort_keys=False)
    data_dir.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=data_dir, prefix=".canned-", suffix=".yaml")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, data_dir / INSTALLED_NAME)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return kept
