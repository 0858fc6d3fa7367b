"""Knowledge-base bench: answer quality on the held-out paraphrases and cost growth with size.

Run: ``.venv/bin/python bench/kb.py [--cost]`` (one run, about two minutes, prints numbers;
``--cost`` only the cost part).

Quality, on ``knowledge/data/heldout.yaml`` (questions written apart from the entries and never
indexed), for three systems:
  (a) the retriever (``KnowledgeBase.search``),
  (b) BM25 alone (same analysis and index, no re-ranking),
  (c) rapidfuzz alone (best WRatio over every phrasing of every entry).
top-1 / top-3 = the right entry ranked first / among the first three (in-scope questions);
answered-right = the system answered outright with the right entry; false answers = out-of-scope
questions (entry_id null) that got an outright answer. The baselines need a score cut-off to
decide "answer"; each gets the one chosen by the same rule as the retriever's, on the entries'
own phrasings (leave-one-question-out / leave-one-entry-out), never on the held-out set.

Cost: index build time, memory (RSS growth) and p50/p99 latency of ``search`` at 250 (real),
5,000 and 50,000 entries; the large sets perturb real entries (synonym swaps, clause swaps,
noise ids and words) so the vocabulary grows as a real KB's would.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import psutil
import yaml
from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.services.knowledge import dense_options  # noqa: E402
from intents.normalize import normalize  # noqa: E402
from knowledge.codes import canonicalize  # noqa: E402
from knowledge.decision import Decision  # noqa: E402
from knowledge.entries import Entry, load_entries  # noqa: E402
from knowledge.fit import MAX_WRONG  # noqa: E402
from knowledge.retriever import KnowledgeBase  # noqa: E402
from knowledge.synonyms import load_groups  # noqa: E402

HELDOUT = ROOT / "knowledge" / "data" / "heldout.yaml"
BLIND = ROOT / "knowledge" / "data" / "blind.yaml"  # written and labelled apart from the entries
SIZES = (5_000, 50_000)
LATENCY_QUERIES = 2_000
SEED = 11

Ranker = Callable[[str], list[tuple[str, float]]]  # text → [(entry id, score)] best first


# quality ---------------------------------------------------------------------------------------


def load_heldout(path: Path = HELDOUT) -> list[tuple[str, frozenset[str]]] | None:
    """Questions and the entries that answer each (none: out of scope or not covered)."""
    if not path.exists():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [
        (str(q["text"]), frozenset(x for x in (q.get("entry_id"), *(q.get("also") or ())) if x))
        for q in data.get("questions", [])
    ]


def bm25_ranker(kb: KnowledgeBase) -> Ranker:
    """BM25 alone; the score is BM25F over the best score the query's terms could reach."""

    def rank(text: str) -> list[tuple[str, float]]:
        return [(e.id, s) for e, s in kb.bm25(text, 10)]

    return rank


def fuzz_ranker(entries: Sequence[Entry]) -> Ranker:
    """rapidfuzz alone: best WRatio of the query against every phrasing, per entry."""
    texts: list[str] = []
    owners: list[str] = []
    for e in entries:
        for p in e.phrasings:
            texts.append(canonicalize(normalize(p).text))
            owners.append(e.id)

    def rank(text: str) -> list[tuple[str, float]]:
        q = canonicalize(normalize(text).text)
        if not q:
            return []
        scores = process.extract(q, texts, scorer=fuzz.WRatio, limit=60)
        best: dict[str, float] = {}
        for _, score, i in scores:
            best.setdefault(owners[i], score / 100.0)
        return sorted(best.items(), key=lambda kv: -kv[1])[:10]

    return rank


def baseline_threshold(entries: Sequence[Entry], make: Callable[[Sequence[Entry]], Ranker]) -> float:
    """The lowest cut-off at which at most MAX_WRONG of the answers to the entries' own
    left-out questions (and of questions whose entry was left out) would be wrong."""
    samples: list[tuple[float, bool]] = []  # (top score, top is right)
    rounds = max(len(e.questions) for e in entries)
    for r in range(rounds):
        reduced = [
            dataclasses.replace(e, questions=e.questions[:r] + e.questions[r + 1 :]) if len(e.questions) > r else e
            for e in entries
        ]
        rank = make(reduced)
        for e in entries:
            if len(e.questions) > r:
                top = rank(e.questions[r])
                samples.append((top[0][1], top[0][0] == e.id) if top else (0.0, False))
    order = list(range(len(entries)))
    random.Random(7).shuffle(order)
    for f in range(5):
        out = set(order[f::5])
        rank = make([e for i, e in enumerate(entries) if i not in out])
        for i in sorted(out):
            for q in entries[i].questions[:3]:
                top = rank(q)
                samples.append((top[0][1], False) if top else (0.0, False))
    for t in np.arange(0.0, 1.51, 0.01):
        answered = [ok for s, ok in samples if s >= t]
        if answered and answered.count(False) / len(answered) <= MAX_WRONG:
            return float(t)
    return 1.5


def evaluate(
    name: str, heldout: Sequence[tuple[str, frozenset[str]]], rank: Ranker, answers: Callable[[str], str | None]
) -> str:
    inscope = [(q, t) for q, t in heldout if t]
    oos = [q for q, t in heldout if not t]
    top1 = top3 = right = wrong = 0
    for q, targets in inscope:
        ids = [i for i, _ in rank(q)]
        top1 += bool(ids) and ids[0] in targets
        top3 += bool(targets & set(ids[:3]))
        answered = answers(q)
        right += answered in targets
        wrong += answered is not None and answered not in targets
    false_answers = sum(answers(q) is not None for q in oos)
    n, m = max(len(inscope), 1), max(len(oos), 1)
    return (
        f"{name:<22} top-1 {top1 / n:6.1%}  top-3 {top3 / n:6.1%}  answered-right {right / n:6.1%}"
        f"  answered-wrong {wrong / n:5.1%}  out-of-scope false answers {false_answers / m:5.1%}"
    )


def quality(kb: KnowledgeBase, entries: Sequence[Entry], dense_kb: KnowledgeBase | None) -> None:
    t_bm25 = t_fuzz = None
    for path in (HELDOUT, BLIND):
        heldout = load_heldout(path)
        if heldout is None:
            print(f"quality: no set at {path.relative_to(ROOT)}; skipped")
            continue
        inscope = sum(1 for _, t in heldout if t)
        unknown = sorted({x for _, t in heldout for x in t if kb.get(x) is None})
        without = len(heldout) - inscope
        print(f"quality on {path.name}: {len(heldout)} questions ({inscope} with an entry, {without} without)")
        if unknown:
            print(f"  note: {len(unknown)} entry ids of the set are not in the KB: {', '.join(unknown[:8])}")
        if t_bm25 is None or t_fuzz is None:
            t_bm25 = baseline_threshold(entries, _bm25_maker(load_groups(), kb))
            t_fuzz = baseline_threshold(entries, fuzz_ranker)

        systems = [("(a) retriever, words", kb)] + ([("(a+) retriever + meaning", dense_kb)] if dense_kb else [])
        for name, system in systems:
            print("  " + evaluate(name, heldout, _search_rank(system), _search_answer(system)))
        bm25, fz = bm25_ranker(kb), fuzz_ranker(entries)
        print("  " + evaluate(f"(b) BM25 alone [>={t_bm25:.2f}]", heldout, bm25, _cut(bm25, t_bm25)))
        print("  " + evaluate(f"(c) rapidfuzz [>={t_fuzz:.2f}]", heldout, fz, _cut(fz, t_fuzz)))
        final = dense_kb or kb
        outcomes = [final.search(q).outcome for q, t in heldout if t]
        oos = [final.search(q).outcome for q, t in heldout if not t]
        share = {o: outcomes.count(o) / max(len(outcomes), 1) for o in ("answer", "suggest", "none")}
        oshare = {o: oos.count(o) / max(len(oos), 1) for o in ("answer", "suggest", "none")}
        print(
            "  retriever outcomes: with an entry "
            + " ".join(f"{k} {v:.1%}" for k, v in share.items())
            + " | without "
            + " ".join(f"{k} {v:.1%}" for k, v in oshare.items())
        )


def _bm25_maker(groups: Sequence[Sequence[str]], kb: KnowledgeBase) -> Callable[[Sequence[Entry]], Ranker]:
    def make(es: Sequence[Entry]) -> Ranker:
        return bm25_ranker(KnowledgeBase.from_entries(es, groups, kb.calibration))

    return make


def _cut(rank: Ranker, t: float) -> Callable[[str], str | None]:
    def answer(q: str) -> str | None:
        top = rank(q)
        return top[0][0] if top and top[0][1] >= t else None

    return answer


def _search_rank(kb: KnowledgeBase) -> Ranker:
    def rank(q: str) -> list[tuple[str, float]]:
        r = kb.rank(q, 20)
        return [(kb.entries[int(i)].id, float(z)) for i, z in zip(r.indices, r.logits, strict=True)]

    return rank


def _search_answer(kb: KnowledgeBase) -> Callable[[str], str | None]:
    def answer(q: str) -> str | None:
        res = kb.search(q)
        return res.best.entry.id if res.outcome == "answer" and res.best else None

    return answer


def dense_latency(kb: KnowledgeBase, queries: Sequence[str]) -> None:
    """The cost of a question the words alone do not settle (the embedding is computed), with the
    softmax threshold deciding (the rule before the decision model) and with the decision model."""
    decision = kb.decision
    for label, kb.decision in (("softmax rule", None), ("decision model", decision)):
        print(f"  [{label}]", end="")
        _dense_latency(kb, queries)
    kb.decision = decision


def _dense_latency(kb: KnowledgeBase, queries: Sequence[str]) -> None:
    times = []
    consulted = 0
    for q in queries:
        t = time.perf_counter()
        consulted += kb.rank(q).dense
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(
        f"  with meaning at {len(kb)} entries: p50 {statistics.median(times):.1f} ms, "
        f"p99 {times[int(len(times) * 0.99) - 1]:.1f} ms over {len(times)} questions "
        f"(embeddings consulted for {consulted})"
    )


# cost ------------------------------------------------------------------------------------------

_CLAUSE = re.compile(r"[，,、；;]")


def synthesize(entries: Sequence[Entry], n: int, groups: Sequence[Sequence[str]], rng: random.Random) -> list[Entry]:
    """n entries made by perturbing real ones, with fresh ids and a growing vocabulary."""
    members = [m for g in groups for m in g if len(m) >= 2]
    group_of = {m: g for g in groups for m in g if len(m) >= 2}
    chars = [c for e in entries for c in e.answer if "\u4e00" <= c <= "\u9fff"]

    def noise_word() -> str:
        return "".join(rng.choice(chars) for _ in range(rng.choice((2, 3))))

    def perturb(text: str) -> str:
        for m in rng.sample(members, 12):
            if m in text and rng.random() < 0.6:
                text = text.replace(m, rng.choice(group_of[m]))
        parts = [p for p in _CLAUSE.split(text) if p]
        if len(parts) > 1 and rng.random() < 0.5:
            rng.shuffle(parts)
            text = "，".join(parts)
        if rng.random() < 0.7:
            text = f"{noise_word()}{text}{noise_word()}"
        if rng.random() < 0.3:
            text += f" XK{rng.randrange(10**6)}"
        return text

    out: list[Entry] = []
    for i in range(n):
        e = entries[i % len(entries)]
        out.append(
            dataclasses.replace(
                e,
                id=f"{e.id}-syn{i}",
                title=perturb(e.title),
                questions=tuple(perturb(q) for q in e.questions),
                tags=(*e.tags, noise_word()),
            )
        )
    return out


def rss() -> int:
    """Resident memory after a collection, with freed heap handed back to the OS (glibc), so
    the figure is what the index keeps, not the build's transient peak."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return psutil.Process().memory_info().rss


def latency(kb: KnowledgeBase, queries: Sequence[str]) -> tuple[float, float]:
    """p50 and p99 of ``search`` in ms. The garbage of the build is collected first: the service
    loads once and answers for hours, so a collection pause from loading is not query cost."""
    gc.collect()
    for q in queries[:50]:  # warm caches (jieba, OpenCC)
        kb.search(q)
    times = []
    for q in queries:
        t0 = time.perf_counter_ns()
        kb.search(q)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def cost(entries: Sequence[Entry]) -> None:
    rng = random.Random(SEED)
    groups = load_groups()
    heldout = load_heldout() or []
    base_queries = [q for q, _ in heldout] or [q for e in entries for q in e.questions]
    pool = [*base_queries, *(q for e in entries for q in e.questions)]
    queries = [rng.choice(pool) for _ in range(LATENCY_QUERIES)]
    # every query distinct, so no cache anywhere can flatter the figures
    queries = [f"{q}{'？' * (i % 3)}{' ' * (i // 3 % 5)}" for i, q in enumerate(queries)]
    print(f"cost ({len(queries)} distinct queries per size; build = analysis + indexing)")
    print("  memory: index = arrays and strings the index keeps; RSS = process growth incl. allocator slack")
    print("  p50/p99: search with the softmax threshold deciding | with the decision model (the service's)")
    print(f"  {'entries':>8} {'build s':>8} {'index MB':>9} {'RSS MB':>7} {'p50 ms':>7} {'p99 ms':>7} | p50 / p99")
    sets: list[tuple[int, Sequence[Entry]]] = [(len(entries), entries)]
    sets += [(n, synthesize(entries, n, groups, rng)) for n in SIZES]
    KnowledgeBase.from_entries(entries[:5], groups).search("预热")  # jieba and OpenCC load once, not per size
    for n, es in sets:
        before = rss()
        t0 = time.perf_counter()
        kb = KnowledgeBase.from_entries(es, groups)
        build = time.perf_counter() - t0
        mem = (rss() - before) / 2**20
        p50, p99 = latency(kb, queries)
        kb.decision = Decision.load()
        d50, d99 = latency(kb, queries)
        own = kb.footprint() / 2**20
        print(f"  {n:>8,} {build:>8.2f} {own:>9.1f} {mem:>7.1f} {p50:>7.2f} {p99:>7.2f} | {d50:.2f} / {d99:.2f}")
        del kb


def main() -> int:
    t0 = time.perf_counter()
    only_cost = "--cost" in sys.argv[1:]  # skip the quality part (minutes of leave-one-out rounds)
    entries = load_entries()
    kb = KnowledgeBase.load()
    dense = dense_options(None, True)
    dense_kb = KnowledgeBase.load(**dense) if dense else None
    cal = kb.calibration
    print(f"knowledge base: {len(kb)} entries; thresholds answer >= {cal.answer}, suggest >= {cal.suggest}")
    if not only_cost:
        quality(kb, entries, dense_kb)
    cost(entries)
    if dense_kb is not None:
        dense_latency(dense_kb, [q for q, _ in (load_heldout(BLIND) or load_heldout() or [])][:300])
    print(f"bench took {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
