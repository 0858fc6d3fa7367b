"""What the bot says to a question, from the knowledge base's ranking and the NLU's reading.

The pure part of answering (no database, no dialogue state), apart from the handler in
:mod:`handlers.knowledge` so that ``qibot ask`` answers exactly as the bot would while importing
neither SQLAlchemy nor the dialogue layer: the command starts in well under 1.5 s.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.texts import Texts
from intents.classifier import NluResult
from intents.labels import DOMAIN_NAMES_ZH, OUT_OF_SCOPE
from knowledge.entries import Entry
from knowledge.retriever import SearchResult


@dataclass(frozen=True, slots=True)
class ComposedAnswer:
    outcome: str  # answer | suggest | clarify | out_of_scope | none
    text: str
    entry_id: str | None = None
    score: float = 0.0
    suggestions: tuple[str, ...] = ()  # entry ids offered as numbered choices
    clarify: tuple[str, ...] = ()  # two domains to ask between
    choices: tuple[str, ...] = ()


def render_entry(entry: Entry, texts: Texts, language: str = "zh") -> str:
    """The answer card: the answer, its basis, and the "详情" hint when there is more (the
    content is Chinese; an English question gets English framing around it)."""
    return texts.render(
        "kb_answer", language, answer=entry.answer.strip(), basis=entry.basis, has_detail=bool(entry.detail)
    )


def compose_answer(result: SearchResult, nlu: NluResult, texts: Texts) -> ComposedAnswer:
    """Decide what the bot says to a question, in Simplified Chinese (or English texts)."""
    language = nlu.normalized.language
    best = result.best
    score = best.score if best is not None else 0.0
    if result.outcome == "answer" and best is not None:
        return ComposedAnswer("answer", render_entry(best.entry, texts, language), best.entry.id, score)
    if result.outcome == "suggest" and result.hits:
        hits = result.hits[:3]
        if len(hits) == 1:  # one candidate: a yes/no question reads better than a list of one
            text = texts.render("kb_suggest_one", language, title=hits[0].entry.title)
            return ComposedAnswer("suggest", text, None, score, (hits[0].entry.id,), choices=("是",))
        text = texts.render("kb_suggest", language, titles=[h.entry.title for h in hits])
        return ComposedAnswer(
            "suggest", text, None, score, tuple(h.entry.id for h in hits),
            choices=tuple(str(i + 1) for i in range(len(hits))),
        )
    if nlu.domain == OUT_OF_SCOPE:
        return ComposedAnswer("out_of_scope", texts.render("out_of_scope", language), None, score)
    if nlu.ambiguous and nlu.runner_up and nlu.domain and nlu.runner_up != OUT_OF_SCOPE:
        first, second = DOMAIN_NAMES_ZH[nlu.domain], DOMAIN_NAMES_ZH[nlu.runner_up]
        text = texts.render("ambiguous_domain", language, first=first, second=second)
        options = (nlu.domain, nlu.runner_up)
        return ComposedAnswer("clarify", text, None, score, clarify=options, choices=(first, second))
    domain_name = DOMAIN_NAMES_ZH.get(nlu.domain or "", "") if nlu.domain != OUT_OF_SCOPE else ""
    return ComposedAnswer("none", texts.render("kb_none", language, domain_name=domain_name), None, score)
