"""Canned replies: short texts a commissioner inserts into a reply, kept in a data file
(``bot/console/data/canned_replies.yaml``) that managers edit without touching code."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

CANNED_FILE = Path(__file__).parent / "data" / "canned_replies.yaml"


@dataclass(frozen=True, slots=True)
class Canned:
    title: str
    text: str


@cache
def canned_replies(path: Path = CANNED_FILE) -> tuple[Canned, ...]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return tuple(Canned(str(item["title"]), str(item["text"]).strip()) for item in data.get("replies", []))
