"""What a user gets on the FIRST reply to a knowledge question: the measure the issue sets.

Run: ``.venv/bin/python bench/firstreply.py [--set heldout|blind|FILE ...] [--misses N]``

Each question goes the way a message does in the service, without a database: the NLU parses it;
a non-inquiry act never reaches the knowledge base (the user gets that act's reply); an inquiry
gets ``handlers.knowledge.compose_answer`` over ``KnowledgeBase.search``. The first reply is then:

* ``right``       a direct answer with the expected entry;
* ``choice``      "您是不是想问" naming the expected entry among its choices;
* ``wrong``       a direct answer with another entry (the harm to avoid);
* ``declined``    "not our service" / "no answer" / clarify / a non-inquiry act.

For questions without an entry (``entry_id: null``), right means no direct answer.
Figures per set and per register (when the file marks registers), so Traditional can be compared
with Simplified and the colloquial registers with the formal ones.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.services.knowledge import dense_options  # noqa: E402
from handlers.knowledge import compose_answer  # noqa: E402
from handlers.texts import load_texts  # noqa: E402
from intents import embed  # noqa: E402
from intents.classifier import Nlu  # noqa: E402
from intents.labels import INQUIRY  # noqa: E402
from knowledge.retriever import KnowledgeBase  # noqa: E402

SETS = {
    "heldout": ROOT / "knowledge" / "data" / "heldout.yaml",
    "blind": ROOT / "knowledge" / "data" / "blind.yaml",
    # the held-back fifth of the s4 writers' questions (never indexed or fitted on)
    "s4": ROOT / "knowledge" / "data" / "heldback_s4.yaml",
}


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    entry_id: str | None
    register: str
    alternatives: tuple[str, ...] = ()  # other entries that answer it as well

    @property
    def targets(self) -> frozenset[str]:
        return frozenset(x for x in (self.entry_id, *self.alternatives) if x)


def load_questions(path: Path) -> list[Question]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = []
    for q in data.get("questions", []):
        alts = q.get("also") or ()
        out.append(Question(str(q["text"]), q.get("entry_id"), str(q.get("register") or "-"), tuple(alts)))
    return out


def first_reply(nlu: Nlu, kb: KnowledgeBase, texts: object, q: Question) -> tuple[str, str | None]:
    """(verdict, what was said) for one question."""
    parsed = nlu.parse(q.text)
    if parsed.act != INQUIRY:
        said: str | None = f"act:{parsed.act}"
        direct: str | None = None
        offered: tuple[str, ...] = ()
    else:
        composed = compose_answer(kb.search(q.text), parsed, texts)  # type: ignore[arg-type]
        direct = composed.entry_id if composed.outcome == "answer" else None
        offered = composed.suggestions
        said = direct or (f"choices:{','.join(offered)}" if offered else composed.outcome)
    if not q.targets:
        return ("right" if direct is None else "wrong"), said
    if direct is not None:
        return ("right" if direct in q.targets else "wrong"), said
    if q.targets & set(offered):
        return "choice", said
    return "declined", said


def report(name: str, qs: Sequence[Question], verdicts: Sequence[str]) -> None:
    def line(label: str, idx: Sequence[int]) -> str:
        inscope = [i for i in idx if qs[i].targets]
        oos = [i for i in idx if not qs[i].targets]
        c = Counter(verdicts[i] for i in inscope)
        n = max(len(inscope), 1)
        false_oos = sum(verdicts[i] == "wrong" for i in oos)
        return (
            f"{label:<14} n={len(inscope):>3}  right {c['right'] / n:6.1%}"
            f"  +choice {(c['right'] + c['choice']) / n:6.1%}"
            f"  wrong {c['wrong'] / n:5.1%}  declined {c['declined'] / n:5.1%}"
            f"  | no-entry n={len(oos):>3} answered {false_oos / max(len(oos), 1):5.1%}"
        )

    print(f"== {name}: {len(qs)} questions")
    print("  " + line("all", range(len(qs))))
    by: dict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(qs):
        by[q.register].append(i)
    if len(by) > 1:
        for reg in sorted(by):
            print("  " + line(reg, by[reg]))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", help="heldout, blind, s4, or a file (default: all three)")
    ap.add_argument("--misses", type=int, default=0, help="print this many misses per set")
    ap.add_argument("--cache", default=str(ROOT / "data" / "cache"), help="NLU cache directory")
    ap.add_argument("--embeddings", choices=("on", "off"), default="on", help="sentence embeddings (when installed)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    use = args.embeddings == "on" and embed.available()
    nlu = Nlu.load(Path(args.cache), embeddings=use)
    dense = dense_options(Path(args.cache), use)
    kb = KnowledgeBase.load(**dense)
    print(f"embeddings {'on' if dense else 'off'}")
    texts = load_texts()
    print(f"loaded NLU and {len(kb)} entries in {time.perf_counter() - t0:.1f} s")
    for name in args.set or ["heldout", "blind", "s4"]:
        path = SETS.get(name, Path(name))
        if not path.exists():
            print(f"== {name}: {path} not found, skipped")
            continue
        qs = load_questions(path)
        results = [first_reply(nlu, kb, texts, q) for q in qs]
        report(name, qs, [v for v, _ in results])
        if args.misses:
            shown = 0
            for q, (v, said) in zip(qs, results, strict=True):
                if v in ("right", "choice"):
                    continue
                print(f"    [{v}] {q.text}  -> {said}  (want {q.entry_id})")
                shown += 1
                if shown >= args.misses:
                    break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
