"""What can be wrong with knowledge-base content, in one shape for the loader and the linter.

The loader refuses content with errors (a broken file must never replace a working index) and
the linter reports the same records, so curators see one vocabulary of problems everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about one file (and, when it concerns one, one entry)."""

    file: str
    entry_id: str | None
    severity: Severity
    message: str

    def __str__(self) -> str:
        where = f"{self.file} [{self.entry_id}]" if self.entry_id else self.file
        return f"{where}: {self.severity}: {self.message}"


class KnowledgeBaseError(Exception):
    """The content cannot be loaded; ``problems`` says why, file by file."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        shown = "\n".join(f"  {p}" for p in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"knowledge base has {len(errors)} error(s):\n{shown}{more}")


def errors(problems: Iterable[Problem]) -> list[Problem]:
    """Only the problems that block loading or fail the check."""
    return [p for p in problems if p.severity == "error"]
