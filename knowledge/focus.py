"""The part of a question that asks: context clauses (who is asking, politeness) dropped.

Real messages carry who is asking and why ("老板让我问一下，我们做的蓝牙耳机卖到国内要做3C吗，谢谢").
Those clauses match no entry, so they dilute every normalised match score (the BM25 ceiling and the
closest-phrasing similarity grow with the query) and the sentence embedding; the "none" outcome
then wins because the message is longer than an entry's phrasings. Clauses that say only who is
asking, why or how politely (``data/context.yaml``) are dropped before retrieval; what the
enterprise makes or uses stays, since it often names the subject ("收银台那几台电子秤").
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from intents import yamlfile

CONTEXT_FILE = Path(__file__).parent / "data" / "context.yaml"
_CLAUSE = re.compile(r"([，,。；;！!？?\n]+)")


@lru_cache(maxsize=4)
def _patterns(path: Path = CONTEXT_FILE) -> tuple[re.Pattern[str], ...]:
    data = yamlfile.read(path) or {}
    return tuple(re.compile(str(p)) for p in data.get("clauses", []))


def focus(text: str, path: Path = CONTEXT_FILE) -> str:
    """``text`` without its context clauses; unchanged when nothing (or everything) is context.
    Expects normalised text (Simplified, lower case)."""
    patterns = _patterns(path)
    parts = _CLAUSE.split(text)
    clauses = parts[0::2]
    seps = [*parts[1::2], ""]
    keep = [
        (c, s) for c, s in zip(clauses, seps, strict=True)
        if c.strip() and not any(p.fullmatch(c.strip()) for p in patterns)
    ]
    if not keep or len(keep) == sum(1 for c in clauses if c.strip()):
        return text
    return "".join(c + s for c, s in keep).strip()


__all__ = ["CONTEXT_FILE", "focus"]
