"""Cross-validation of NLU choices grouped by who wrote the training data.

Run: ``.venv/bin/python bench/nlu_cv.py [--embeddings] [--C 0.5,1,2]``

The training files come from different hands (``train/<label>.yaml`` by the team, ``train/s1-*``
written later from enterprise situations by a separate session, ``s2-*`` …). A model choice is
judged by training on every group but one and scoring the group left out, so what is measured is
how the choice carries to text written by someone else, the way real traffic is. The held-out
and blind sets are never used here: they only report, after the choices are made.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intents import embed  # noqa: E402
from intents.classifier import Nlu, NluConfig  # noqa: E402
from intents.dataset import Example, load_lexicon, load_training  # noqa: E402
from intents.evaluate import evaluate  # noqa: E402


def writer(example: Example) -> str:
    """The group of an example: the prefix of its file name (``s1-ip.yaml`` → ``s1``), else team."""
    name = example.source.split("#", 1)[0]
    head = name.split("-", 1)[0]
    return head if "-" in name and head[:1] == "s" and head[1:].isdigit() else "team"


def grouped(
    examples: Sequence[Example], config: NluConfig, use_embeddings: bool
) -> dict[str, tuple[float, float, float]]:
    """Per held-out writer: (act accuracy, domain accuracy, ECE)."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        groups[writer(e)].append(e)
    lexicon = load_lexicon()
    embedder = embed.load_embedder() if use_embeddings else None
    out = {}
    for held in sorted(groups):
        train = [e for e in examples if writer(e) != held]
        nlu = Nlu.train(train, lexicon, config, embedder=embedder)
        r = evaluate(nlu, groups[held])
        out[held] = (r.acts.accuracy, r.domains.accuracy, r.ece)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--embeddings", action="store_true", help="also with the sentence-embedding heads")
    ap.add_argument("--C", default="1", help="comma-separated SVM C values to compare")
    ap.add_argument("--ambiguity", default="", help="comma-separated ambiguity ratios to compare")
    args = ap.parse_args(argv)
    examples = load_training()
    print(f"{len(examples)} training examples; groups: "
          + ", ".join(f"{g} {sum(writer(e) == g for e in examples)}" for g in sorted({writer(e) for e in examples})))
    configs: list[tuple[str, NluConfig, bool]] = []
    base = NluConfig()
    for c in (float(x) for x in args.C.split(",")):
        act, domain = dataclasses.replace(base.act, C=c), dataclasses.replace(base.domain, C=c)
        cfg = dataclasses.replace(base, act=act, domain=domain)
        configs.append((f"C={c:g}", cfg, False))
        if args.embeddings:
            configs.append((f"C={c:g} +embeddings", cfg, True))
    for name, cfg, use in configs:
        t0 = time.perf_counter()
        scores = grouped(examples, cfg, use)
        cells = "  ".join(f"{g}: act {a:6.2%} domain {d:6.2%} ece {e:.3f}" for g, (a, d, e) in scores.items())
        print(f"{name:<22} {cells}   ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
