"""Synonym and alias groups, applied alike to the index and to the query.

Enterprises say 3C, CCC or 强制性产品认证 for the same thing and 续期 for 续展; the entries use
one of them. Each group maps every member to one canonical term, so BM25 sees one token and no
phrasing has to list every variant. Members are matched on jieba token boundaries (a member
matches when consecutive tokens concatenate to it), so a short alias never fires inside an
unrelated longer word.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from intents import yamlfile
from knowledge.problems import KnowledgeBaseError, Problem

SYNONYMS_FILE = Path(__file__).parent / "data" / "synonyms.yaml"
_MAX_SPAN = 6  # tokens a member may span


@dataclass(frozen=True, slots=True)
class Synonyms:
    """Member (normalised, token-concatenated) → canonical term."""

    canonical: dict[str, str] = field(default_factory=dict)
    # every character prefix of every member, so a scan stops as soon as no member can match
    prefixes: frozenset[str] = field(default_factory=frozenset)

    def __len__(self) -> int:
        return len(self.canonical)

    def apply(self, tokens: Sequence[str]) -> list[str]:
        """Replace every run of tokens that spells a member by its canonical term, longest first."""
        if not self.canonical:
            return list(tokens)
        out: list[str] = []
        i, n = 0, len(tokens)
        while i < n:
            key, best, best_end = "", None, i
            for j in range(i, min(n, i + _MAX_SPAN)):
                key += tokens[j]
                if key not in self.prefixes:
                    break
                hit = self.canonical.get(key)
                if hit is not None:
                    best, best_end = hit, j + 1
            if best is None:
                out.append(tokens[i])
                i += 1
            else:
                out.append(best)
                i = best_end
        return out


def read_groups(path: Path) -> tuple[list[list[str]], list[Problem]]:
    """The groups of a synonyms file and what is wrong with it (never raises)."""
    name = path.name
    try:
        data: Any = yamlfile.read(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return [], [Problem(name, None, "error", f"cannot read YAML: {exc}".replace("\n", " "))]
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        return [], [Problem(name, None, "error", "expected a mapping with a 'groups' list")]
    out: list[list[str]] = []
    problems: list[Problem] = []
    for i, group in enumerate(groups, 1):
        if not isinstance(group, list) or len(group) < 2 or not all(isinstance(m, str) for m in group):
            problems.append(Problem(name, None, "error", f"group {i} must be a list of at least 2 strings"))
            continue
        out.append([m for m in group if m.strip()])
    return out, problems


def build(groups: Sequence[Sequence[str]], analyze: Callable[[str], list[str]]) -> Synonyms:
    """Map every member of every group to the group's first member, all in analysed form.

    ``analyze`` turns a term into the tokens the analyser would produce before synonyms (codes
    become code tokens), so members match whatever the segmenter does with them.
    """
    canonical: dict[str, str] = {}
    for group in groups:
        keys = ["".join(analyze(m)) for m in group]
        keys = [k for k in keys if k]
        if not keys:
            continue
        head = keys[0]
        for key in keys:
            canonical.setdefault(key, head)
    prefixes = frozenset(key[:k] for key in canonical for k in range(1, len(key) + 1))
    return Synonyms(canonical, prefixes)


def load_groups(path: Path | str | None = None) -> list[list[str]]:
    """The groups of a synonyms file; raises KnowledgeBaseError when the file is broken."""
    groups, problems = read_groups(Path(path) if path is not None else SYNONYMS_FILE)
    if problems:
        raise KnowledgeBaseError(problems)
    return groups
