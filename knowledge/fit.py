"""Fit the score combination and the outcome thresholds on the entries' own phrasings.

Run ``python -m knowledge.fit`` after large content changes; it rewrites
``knowledge/data/calibration.json``. No held-out question is ever used here.

* Positives, leave-one-question-out: each question is removed from its entry (in rounds: round r
  removes every entry's r-th question) and asked against the rest, like a new paraphrase.
* Negatives, leave-one-entry-out: a fifth of the entries is removed at a time and their questions
  are asked; whatever comes back is wrong, like a question the KB does not cover.
* Off-topic questions (``calibration_negatives.yaml``): chit-chat and other services, which
  must end in "none".

The model is the candidates-plus-none softmax of ``calibration``, fitted by maximum likelihood
(L-BFGS with sign constraints: more match evidence never lowers a candidate) on the BM25
candidates of every asked question; the right candidate, or "none" when it is not among them,
is the label. The thresholds are chosen on the same data: ``answer`` as the lowest P(top) at
which at most ``MAX_WRONG`` of the answered left-out questions are wrong, at most
``MAX_UNCOVERED_ANSWER`` of the uncovered and ``MAX_OFFTOPIC`` of the off-topic questions are
answered; ``suggest`` as the lowest P at which off-topic questions still end in "none" and
uncovered questions get choices at most ``MAX_UNCOVERED_SUGGEST`` of the time. SciPy's optimiser
is needed here only, never on the query path.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from knowledge import decision as decmod
from knowledge.calibration import CALIBRATION_FILE, DENSE_CALIBRATION_FILE, DENSE_FEATURES, Calibration
from knowledge.entries import Entry, load_entries
from knowledge.features import FEATURES
from knowledge.retriever import KnowledgeBase, Ranked
from knowledge.synonyms import load_groups

log = logging.getLogger(__name__)

NEGATIVES_FILE = Path(__file__).parent / "data" / "calibration_negatives.yaml"
MAX_WRONG = 0.05  # wrong answers among the answered in-scope questions
MAX_UNCOVERED_ANSWER = 0.10  # questions whose entry is missing that still get an answer
MAX_OFFTOPIC = 0.02  # off-topic questions that get an answer
MAX_OFFTOPIC_SUGGEST = 0.05  # off-topic questions that get choices (less harm than an answer)
MAX_UNCOVERED_SUGGEST = 0.7  # in-domain questions without an entry that get related entries as choices
L2 = 0.01
# Share of real questions with no entry, as the issue sizes the evaluation (50 of ~200).
EXPECTED_UNCOVERED = 0.25
MIN_ANSWER = 0.5  # never answer when another candidate could be as likely
FOLDS = 5
SEED = 7


@dataclass(frozen=True, slots=True)
class Sample:
    """One asked question and what came back (``dense``: the same question ranked with the
    sentence-embedding features, when the index has them)."""

    kind: str  # "loqo" (answer exists), "loeo" (entry removed), "offtopic"
    text: str
    target: str | None
    ranked: Ranked
    ids: tuple[str, ...]
    dense: Sample | None = None


def _ask(kb: KnowledgeBase, kind: str, text: str, target: str | None) -> Sample:
    ranked = kb.rank(text, dense=False)
    ids = tuple(kb.entries[int(i)].id for i in ranked.indices)
    dense = None
    if kb.uses_dense:
        d = kb.rank(text, dense=True)
        if d.dense:
            dense = Sample(kind, text, target, d, tuple(kb.entries[int(i)].id for i in d.indices))
    return Sample(kind, text, target, ranked, ids, dense)


def collect(
    entries: Sequence[Entry], groups: Sequence[Sequence[str]], cal: Calibration, **dense: Any
) -> list[Sample]:
    """Ask every question in leave-one-question-out and leave-one-entry-out rounds (``dense``:
    the ``embedder``/``vectors`` of the index, to collect the dense features too)."""
    samples: list[Sample] = []
    rounds = max(len(e.questions) for e in entries)
    for r in range(rounds):
        reduced = [
            dataclasses.replace(e, questions=e.questions[:r] + e.questions[r + 1 :]) if len(e.questions) > r else e
            for e in entries
        ]
        kb = KnowledgeBase.from_entries(reduced, groups, cal, **dense)
        for e in entries:
            if len(e.questions) > r:
                samples.append(_ask(kb, "loqo", e.questions[r], e.id))
    order = list(range(len(entries)))
    random.Random(SEED).shuffle(order)
    for f in range(FOLDS):
        out = {order[i] for i in range(f, len(order), FOLDS)}
        kb = KnowledgeBase.from_entries([e for i, e in enumerate(entries) if i not in out], groups, cal, **dense)
        for i in sorted(out):
            for q in entries[i].questions[:3]:
                samples.append(_ask(kb, "loeo", q, None))
    kb = KnowledgeBase.from_entries(entries, groups, cal, **dense)
    for text in load_negatives():
        samples.append(_ask(kb, "offtopic", text, None))
    return samples


def load_negatives(path: Path = NEGATIVES_FILE) -> list[str]:
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [str(q) for q in data.get("questions", [])]


def _target(s: Sample) -> int:
    """Index of the right candidate in the sample's (BM25) candidate list, or -1 for "none"."""
    return s.ids.index(s.target) if s.target in s.ids else -1


def fit_softmax(samples: Sequence[Sample], l2: float = L2, features: tuple[str, ...] = FEATURES) -> Calibration:
    """Maximum-likelihood weights of the candidates-plus-none softmax (L-BFGS)."""
    from scipy.optimize import minimize

    usable = [s for s in samples if len(s.ids)]
    feats = [np.asarray(s.ranked.features, dtype=np.float64) for s in usable]
    targets = [_target(s) for s in usable]
    unknown = np.asarray([s.ranked.unknown for s in usable])
    # The rounds ask as many uncovered as covered questions; real traffic has far fewer, so the
    # uncovered ones are weighted down to the expected share (else "none" is learned too likely).
    n_pos = sum(s.kind == "loqo" for s in usable)
    n_neg = len(usable) - n_pos
    w_neg = EXPECTED_UNCOVERED / (1 - EXPECTED_UNCOVERED) * n_pos / max(n_neg, 1)
    weights = np.asarray([1.0 if s.kind == "loqo" else w_neg for s in usable])
    d = len(features)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, n0, n1 = theta[:d], theta[d], theta[d + 1]
        total, grad = 0.0, np.zeros_like(theta)
        for f, t, u, sw in zip(feats, targets, unknown, weights, strict=True):
            z = np.concatenate(([n0 + n1 * u], f @ w))
            m = z.max()
            e = np.exp(z - m)
            p = e / e.sum()
            total += sw * (m + np.log(e.sum()) - z[t + 1])
            g = sw * p
            g[t + 1] -= sw
            grad[:d] += g[1:] @ f
            grad[d] += g[0]
            grad[d + 1] += g[0] * u
        total += l2 * float(theta[:d] @ theta[:d])
        grad[:d] += 2 * l2 * theta[:d]
        return total / weights.sum(), grad / weights.sum()

    start = np.concatenate((np.asarray(Calibration.default_for(features).weights), [6.0, 2.0]))
    # More evidence of a match never lowers a candidate (code_miss never raises it), and unknown
    # words never make "none" less likely: the signs are domain knowledge, not data.
    signs = {"code_miss": (None, 0.0)}
    bounds = [signs.get(name, (0.0, None)) for name in features] + [(None, None), (0.0, None)]
    # The objective is convex, but with the default tolerances L-BFGS-B stops on the plateau a
    # poor start sits on (dense features near 0.9 need weights in the tens): tight tolerances.
    options = {"maxiter": 20000, "ftol": 1e-13, "gtol": 1e-9}
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    if not result.success:
        log.warning("softmax fit did not converge: %s", result.message)
    theta = result.x
    return Calibration(
        features=features,
        weights=tuple(float(x) for x in theta[:d]),
        null_bias=float(theta[d]),
        null_unknown=float(theta[d + 1]),
    )


@dataclass(frozen=True, slots=True)
class Decided:
    kind: str
    outcome: str
    right: bool  # answered with the target, or (uncovered/off-topic) not answered
    top1: bool
    top3: bool


def decide(samples: Sequence[Sample], cal: Calibration) -> list[Decided]:
    """Replay the service's outcome logic (``retriever.decide``) for every sample."""
    out: list[Decided] = []
    for s in samples:
        logits = cal.logits(s.ranked.features)
        order = np.argsort(-logits, kind="stable")
        ranked_ids = [s.ids[int(i)] for i in order]
        probs = cal.probabilities(logits[order], s.ranked.unknown)
        p1 = float(probs[0]) if len(probs) else 0.0
        outcome = "answer" if p1 >= cal.answer else "suggest" if p1 >= cal.suggest else "none"
        if not ranked_ids:
            outcome = "none"
        top1 = bool(ranked_ids) and ranked_ids[0] == s.target
        right = top1 and outcome == "answer" if s.target else outcome == "none"
        out.append(Decided(s.kind, outcome, right, top1, s.target in ranked_ids[:3]))
    return out


def _share(xs: Sequence[Decided], test: Callable[[Decided], bool]) -> float:
    return sum(map(test, xs)) / len(xs) if xs else 0.0


def choose_thresholds(samples: Sequence[Sample], cal: Calibration) -> Calibration:
    """Lowest thresholds that keep wrong answers, answers to uncovered questions and choices
    offered for off-topic questions within their bounds."""
    answer = 0.95
    for t in np.arange(MIN_ANSWER, 0.951, 0.01):
        d = decide(samples, dataclasses.replace(cal, answer=float(t), suggest=float(t)))
        loqo = [x for x in d if x.kind == "loqo" and x.outcome == "answer"]
        if (
            _share(loqo, lambda x: not x.right) <= MAX_WRONG
            and _share([x for x in d if x.kind == "loeo"], lambda x: x.outcome == "answer") <= MAX_UNCOVERED_ANSWER
            and _share([x for x in d if x.kind == "offtopic"], lambda x: x.outcome == "answer") <= MAX_OFFTOPIC
        ):
            answer = float(t)
            break
    suggest = answer
    for t in np.arange(answer, 0.049, -0.01):
        d = decide(samples, dataclasses.replace(cal, answer=answer, suggest=float(t)))
        if _share([x for x in d if x.kind == "offtopic"], lambda x: x.outcome != "none") > MAX_OFFTOPIC_SUGGEST:
            break
        if _share([x for x in d if x.kind == "loeo"], lambda x: x.outcome != "none") > MAX_UNCOVERED_SUGGEST:
            break
        suggest = float(t)
    return dataclasses.replace(cal, answer=round(answer, 2), suggest=round(suggest, 2))


def report(samples: Sequence[Sample], cal: Calibration) -> dict[str, object]:
    """Outcome shares per kind of question, for the notes and the console."""
    d = decide(samples, cal)
    out: dict[str, object] = {}
    for kind in ("loqo", "loeo", "offtopic"):
        xs = [x for x in d if x.kind == kind]
        if not xs:
            continue
        n = len(xs)
        row: dict[str, object] = {
            "n": n,
            "answer": round(sum(x.outcome == "answer" for x in xs) / n, 3),
            "suggest": round(sum(x.outcome == "suggest" for x in xs) / n, 3),
            "none": round(sum(x.outcome == "none" for x in xs) / n, 3),
        }
        if kind == "loqo":
            row["top1"] = round(sum(x.top1 for x in xs) / n, 3)
            row["answered_right"] = round(sum(x.right for x in xs) / n, 3)
            row["top3"] = round(sum(x.top3 for x in xs) / n, 3)
            answered = [x for x in xs if x.outcome == "answer"]
            row["wrong_of_answered"] = round(sum(not x.right for x in answered) / max(len(answered), 1), 3)
        out[kind] = row
    return out


def unsure(samples: Sequence[Sample], cal: Calibration) -> list[Sample]:
    """The dense versions of the samples the lexical calibration would not answer outright:
    the population the dense calibration serves, so it is fitted on that alone."""
    out = []
    for s, d in zip(samples, decide(samples, cal), strict=True):
        if s.dense is not None and d.outcome != "answer":
            out.append(s.dense)
    return out


def fit_dense(samples: Sequence[Sample], lexical: Calibration) -> Calibration | None:
    """The calibration used when embeddings were consulted, or None without dense samples."""
    rest = unsure(samples, lexical)
    if not rest:
        return None
    cal = choose_thresholds(rest, fit_softmax(rest, features=DENSE_FEATURES))
    notes: dict[str, object] = {
        "fitted_on": f"{len(rest)} questions the lexical ranking would not answer",
        "outcomes": report(rest, cal),
    }
    return dataclasses.replace(cal, notes=notes)


def fit(
    entries: Sequence[Entry], groups: Sequence[Sequence[str]], **dense: Any
) -> tuple[Calibration, list[Sample]]:
    """The fitted calibration and the samples it was fitted on."""
    samples = collect(entries, groups, Calibration(), **dense)
    cal = choose_thresholds(samples, fit_softmax(samples))
    notes: dict[str, object] = {
        "fitted_on": f"{len(entries)} entries; leave-one-question-out, leave-one-entry-out, off-topic negatives",
        "rule": (
            f"answer: lowest P(top) with <= {MAX_WRONG:.0%} wrong answers, <= {MAX_UNCOVERED_ANSWER:.0%} of "
            f"uncovered and <= {MAX_OFFTOPIC:.0%} of off-topic questions answered; suggest: lowest P with "
            f"<= {MAX_OFFTOPIC_SUGGEST:.0%} of off-topic and <= {MAX_UNCOVERED_SUGGEST:.0%} of uncovered questions "
            "getting choices"
        ),
        "outcomes": report(samples, cal),
    }
    return dataclasses.replace(cal, notes=notes), samples


# The decision model (``knowledge.decision``): its thresholds keep, on the grouped folds, wrong
# answers to covered questions, answers to uncovered ones (their entry left out) and answers to
# off-topic questions within these bounds, and answer as many covered questions right as they allow.
DECISION_MAX_WRONG = 0.03  # of the covered questions asked
DECISION_MAX_UNCOVERED = 0.12  # the softmax rule's level on the same folds, so only the model differs
DECISION_MAX_OFFTOPIC = 0.02
DECISION_C = 1.0
DECISION_TIE = 0.005


def _decision_rows(samples: Sequence[Sample], cal: Calibration, stage: str) -> tuple[np.ndarray, np.ndarray]:
    """Decision features of every sample's ranking re-scored with ``cal``, and whether its top is right."""
    xs, ys = [], []
    for s in samples:
        f = np.asarray(s.ranked.features, dtype=np.float64)
        logits = cal.logits(f)
        order = np.argsort(-logits, kind="stable")
        probs = cal.probabilities(logits[order], s.ranked.unknown)
        a = s.ranked.analyzed
        xs.append(decmod.features(f[order], logits[order], probs, s.ranked.unknown,
                                  a.text if a is not None else "", len(a.terms) if a is not None else 0, cal.features))
        ys.append(bool(len(order)) and s.target is not None and s.ids[int(order[0])] == s.target)
    return np.asarray(xs), np.asarray(ys)


def _groups(samples: Sequence[Sample], entries: Sequence[Entry]) -> np.ndarray:
    """The fold of each sample: the position of its question in its entry (questions at one
    position were mostly written in one pass, in one register); off-topic ones spread evenly."""
    position: dict[str, int] = {}
    for e in entries:
        for i, q in enumerate(e.questions):
            position.setdefault(q, i)
    return np.asarray([position.get(s.text, k % FOLDS) for k, s in enumerate(samples)])


def _logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=DECISION_C, max_iter=5000).fit((x - mean) / scale, y)
    return mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0])


def _out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    p = np.zeros(len(y))
    for g in np.unique(groups):
        train = groups != g
        mean, scale, coef, intercept = _logistic(x[train], y[train])
        p[~train] = 1.0 / (1.0 + np.exp(-(((x[~train] - mean) / scale) @ coef + intercept)))
    return p


def fit_decision(
    samples: Sequence[Sample], entries: Sequence[Entry], cal: Calibration, dense_cal: Calibration | None
) -> tuple[decmod.Decision, dict[str, object]]:
    """The two-stage decision model and its thresholds, chosen on out-of-fold probabilities
    (leave one question position out); returns the model and the fold figures."""
    both = [s for s in samples if s.dense is not None] if dense_cal is not None else list(samples)
    kinds = np.asarray([s.kind for s in both])
    groups = _groups(both, entries)
    xl, yl = _decision_rows(both, cal, "lexical")
    pl = _out_of_fold(xl, yl, groups)
    if dense_cal is not None:
        xd, yd = _decision_rows([s.dense for s in both if s.dense is not None], dense_cal, "dense")
        pd = _out_of_fold(xd, yd, groups)
    else:
        yd, pd = np.zeros(len(both), dtype=bool), np.zeros(len(both))
    covered, uncovered, offtopic = kinds == "loqo", kinds == "loeo", kinds == "offtopic"

    def figures(tl: float, td: float) -> tuple[float, float, float, float]:
        lexical = pl >= tl
        dense = ~lexical & (pd >= td)
        right = (lexical & yl) | (dense & yd)
        answered = lexical | dense
        return (
            float((right & covered).sum() / max(covered.sum(), 1)),
            float((answered & ~right & covered).sum() / max(covered.sum(), 1)),
            float((answered & uncovered).sum() / max(uncovered.sum(), 1)),
            float((answered & offtopic).sum() / max(offtopic.sum(), 1)),
        )

    feasible: list[tuple[float, float, float]] = []
    alone: list[tuple[float, float]] = []  # the lexical threshold when no dense stage follows
    for tl in np.arange(0.30, 0.991, 0.02):
        for td in [*(np.arange(0.20, 0.991, 0.02) if dense_cal is not None else ()), 1.01]:
            right, wrong, unc, off = figures(float(tl), float(td))
            if wrong <= DECISION_MAX_WRONG and unc <= DECISION_MAX_UNCOVERED and off <= DECISION_MAX_OFFTOPIC:
                feasible.append((right, float(tl), float(td)))
                if td > 1.0:
                    alone.append((right, float(tl)))
    # Among the choices within half a point of the best, the lowest lexical threshold: the dense
    # stage costs an embedding (10-30 ms), so the lexical stage answers what it can.
    top = max(r for r, _, _ in feasible)
    _, tl, td = min(((r, t, d) for r, t, d in feasible if r >= top - DECISION_TIE), key=lambda c: (c[1], -c[0]))
    tl_alone = max(alone)[1] if alone else 0.99
    if dense_cal is None:
        td = 1.0
    right, wrong, unc, off = figures(tl, td)
    stages = {}
    mean, scale, coef, intercept = _logistic(xl, yl)
    names = decmod.feature_names(cal.features)
    stages["lexical"] = decmod.StageModel(names, mean, scale, coef, intercept, round(tl, 2))
    stages["lexical_alone"] = dataclasses.replace(stages["lexical"], answer=round(tl_alone, 2))
    if dense_cal is not None:
        mean, scale, coef, intercept = _logistic(xd, yd)
        stages["dense"] = decmod.StageModel(
            decmod.feature_names(dense_cal.features), mean, scale, coef, intercept, round(td, 2)
        )
    notes: dict[str, object] = {
        "folds": "leave one question position out",
        "thresholds": {"lexical": round(tl, 2), "dense": round(td, 2), "lexical_alone": round(tl_alone, 2)},
        "lexical_alone_answered_right": round(max(alone)[0], 3) if alone else 0.0,
        "covered_answered_right": round(right, 3),
        "covered_answered_wrong": round(wrong, 3),
        "uncovered_answered": round(unc, 3),
        "offtopic_answered": round(off, 3),
    }
    return decmod.Decision(stages, decmod.current_key()), notes


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    directory = args[0] if args else None
    entries = load_entries(directory)
    dense: dict[str, object] = {}
    from intents import embed  # optional: the dense calibration needs the encoder's vectors

    if embed.available():
        from intents.vectors import VectorStore
        from knowledge.dense import SHIPPED_VECTORS

        embedder = embed.load_embedder()
        if embedder is not None:
            dense = {"embedder": embedder, "vectors": VectorStore(embedder.name, [SHIPPED_VECTORS])}
    cal, samples = fit(entries, load_groups(), **dense)
    cal.save(CALIBRATION_FILE)
    print(yaml.safe_dump(dataclasses.asdict(cal), allow_unicode=True, sort_keys=False))
    dense_cal = fit_dense(samples, cal)
    if dense_cal is not None:
        dense_cal.save(DENSE_CALIBRATION_FILE)
        print(yaml.safe_dump(dataclasses.asdict(dense_cal), allow_unicode=True, sort_keys=False))
    # The decision model reads the softmaxes just written: its key covers them.
    decision, notes = fit_decision(samples, entries, cal, dense_cal)
    decision.save(decmod.DECISION_FILE)
    print("decision model (grouped folds):", yaml.safe_dump(notes, allow_unicode=True, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
