"""Scoring an NLU (or a baseline) on labelled examples: what ``qibot nlu eval`` prints.

Act accuracy is over all examples. Domain accuracy is over the examples whose gold act is
``inquiry``, and is strict: an inquiry the parser did not recognise as an inquiry counts as a wrong
domain (predicted domain shown as ``-``), because for the enterprise the effect is the same — its
demand is not routed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from intents.dataset import Example
from intents.labels import ACTS, INQUIRY, INQUIRY_DOMAINS

#: Predicted "domain" of a gold inquiry that was not recognised as an inquiry.
NO_DOMAIN = "-"

_ABBREV = {
    "inquiry": "inq",
    "greeting": "greet",
    "thanks_bye": "thx",
    "help": "help",
    "progress_query": "prog",
    "handoff": "hand",
    "complaint": "compl",
    "rating": "rate",
    "cancel": "cancel",
    "metrology": "metro",
    "standards": "std",
    "testing": "test",
    "certification": "cert",
    "quality": "qual",
    "ip": "ip",
    "branding": "brand",
    "out_of_scope": "oos",
    NO_DOMAIN: NO_DOMAIN,
}


class Prediction(Protocol):
    # Read-only, so frozen results (the NLU's NluResult) satisfy it.
    @property
    def act(self) -> str: ...
    @property
    def domain(self) -> str | None: ...
    @property
    def confidence(self) -> float: ...


class Parser(Protocol):
    """Anything with ``parse(text)`` returning act, domain and confidence: the NLU or a baseline."""

    def parse(self, text: str) -> Prediction: ...


@dataclass(frozen=True, slots=True)
class Miss:
    text: str
    gold_act: str
    gold_domain: str | None
    act: str
    domain: str | None
    confidence: float


@dataclass(frozen=True, slots=True)
class LabelScores:
    """Accuracy, macro-F1, per-label F1 and the confusion matrix (gold → predicted → count)."""

    n: int
    accuracy: float
    macro_f1: float
    f1: dict[str, float]
    labels: tuple[str, ...]
    confusion: dict[str, Counter[str]]


@dataclass(frozen=True, slots=True)
class Report:
    acts: LabelScores
    domains: LabelScores
    misses: list[Miss] = field(default_factory=list)
    #: Expected calibration error of ``confidence`` as the probability that act and domain are
    #: both right (10 equal-width bins): 0 means "0.8" is right 8 times in 10.
    ece: float = 0.0
    #: Share of the messages whose confidence is at least 0.9, and the accuracy among them.
    confident_share: float = 0.0
    confident_accuracy: float = 0.0


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Σ over confidence bins of |accuracy − mean confidence| weighted by the bin's share."""
    n = len(confidences)
    if n == 0:
        return 0.0
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidences) if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if idx:
            acc = sum(correct[i] for i in idx) / len(idx)
            conf = sum(confidences[i] for i in idx) / len(idx)
            total += len(idx) / n * abs(acc - conf)
    return total


def score_labels(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> LabelScores:
    """Accuracy and macro-F1 over ``labels`` (labels with no gold and no prediction are skipped)."""
    confusion: dict[str, Counter[str]] = {label: Counter() for label in labels}
    for g, p in zip(gold, pred, strict=True):
        confusion.setdefault(g, Counter())[p] += 1
    f1: dict[str, float] = {}
    for label in labels:
        tp = confusion.get(label, Counter())[label]
        gold_n = sum(confusion.get(label, Counter()).values())
        pred_n = sum(row[label] for row in confusion.values())
        if gold_n == 0 and pred_n == 0:
            continue
        f1[label] = 2 * tp / (gold_n + pred_n) if gold_n + pred_n else 0.0
    n = len(gold)
    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    return LabelScores(
        n=n,
        accuracy=correct / n if n else 0.0,
        macro_f1=sum(f1.values()) / len(f1) if f1 else 0.0,
        f1=f1,
        labels=tuple(labels),
        confusion=confusion,
    )


def evaluate(nlu: Parser, examples: Sequence[Example]) -> Report:
    """Parse every example once and score acts, domains and list the misses."""
    gold_acts: list[str] = []
    pred_acts: list[str] = []
    gold_domains: list[str] = []
    pred_domains: list[str] = []
    misses: list[Miss] = []
    confidences: list[float] = []
    correct: list[bool] = []
    for ex in examples:
        result = nlu.parse(ex.text)
        domain = result.domain if result.act == INQUIRY else None
        gold_acts.append(ex.act)
        pred_acts.append(result.act)
        if ex.act == INQUIRY:
            gold_domains.append(ex.domain or NO_DOMAIN)
            pred_domains.append(domain or NO_DOMAIN)
        right = result.act == ex.act and domain == ex.domain
        confidences.append(float(result.confidence))
        correct.append(right)
        if not right:
            misses.append(Miss(ex.text, ex.act, ex.domain, result.act, domain, float(result.confidence)))
    confident = [i for i, c in enumerate(confidences) if c >= 0.9]
    return Report(
        acts=score_labels(gold_acts, pred_acts, ACTS),
        domains=score_labels(gold_domains, pred_domains, INQUIRY_DOMAINS),
        misses=misses,
        ece=expected_calibration_error(confidences, correct),
        confident_share=len(confident) / len(confidences) if confidences else 0.0,
        confident_accuracy=sum(correct[i] for i in confident) / len(confident) if confident else 0.0,
    )


def _label(act: str, domain: str | None) -> str:
    return f"{act}/{domain}" if domain else act


def _matrix(scores: LabelScores, extra_columns: Sequence[str] = ()) -> list[str]:
    columns = [*scores.labels, *extra_columns]
    width = max(6, *(len(_ABBREV.get(c, c)) + 1 for c in columns))
    head = " " * 16 + "".join(f"{_ABBREV.get(c, c):>{width}}" for c in columns)
    lines = ["  gold \\ predicted", head]
    for gold in scores.labels:
        row = scores.confusion.get(gold, Counter())
        cells = "".join(f"{(row[c] or '.')!s:>{width}}" for c in columns)
        lines.append(f"  {gold:<14}{cells}")
    return lines


def format_report(report: Report, title: str = "NLU evaluation") -> str:
    """Human-readable report: headline numbers, per-label F1, both confusion matrices, misses."""
    a, d = report.acts, report.domains
    lines = [
        title,
        f"  act:    accuracy {a.accuracy:7.2%}  macro-F1 {a.macro_f1:.3f}  ({a.n} examples)",
        f"  domain: accuracy {d.accuracy:7.2%}  macro-F1 {d.macro_f1:.3f}  ({d.n} inquiries)",
        f"  calibration: ECE {report.ece:.3f}; confidence >= 0.9 on {report.confident_share:.0%} of messages,"
        f" right on {report.confident_accuracy:.1%} of those",
        "",
        "per-act F1:    " + "  ".join(f"{_ABBREV[k]} {v:.2f}" for k, v in a.f1.items()),
        "per-domain F1: " + "  ".join(f"{_ABBREV[k]} {v:.2f}" for k, v in d.f1.items()),
        "",
        "act confusion:",
        *_matrix(a),
        "",
        "domain confusion (inquiries; '-' = not recognised as an inquiry):",
        *_matrix(d, extra_columns=(NO_DOMAIN,)),
        "",
        f"misclassified ({len(report.misses)}):",
    ]
    for m in report.misses:
        lines.append(
            f"  {_label(m.gold_act, m.gold_domain):<28} -> {_label(m.act, m.domain):<28} {m.confidence:4.2f}  {m.text}"
        )
    return "\n".join(lines)
