"""Answering questions from the knowledge base (服务大厅 / 质量讲堂).

Three outcomes, as the retriever reports them: a confident answer with its basis; "您是不是想问"
with up to three numbered choices; or an honest "I don't know" that logs the gap for curators
(out-of-scope demands get the referral text instead). :func:`compose_answer` (in :mod:`handlers.answers`)
is the pure part, shared with ``qibot ask`` so the command answers exactly as the bot would.
"""

from __future__ import annotations

import re

from bot.messages import Reply
from bot.services.kb_gaps import log_gap
from handlers.answers import ComposedAnswer, compose_answer, render_entry
from handlers.base import Match, Outcome, TurnContext
from handlers.words import bare, words
from intents.labels import DOMAIN_NAMES_ZH, OUT_OF_SCOPE

SUGGEST_FLOW = "kb_suggest"
CLARIFY_FLOW = "kb_clarify"
LAST_ENTRY = "kb_last_entry"
LAST_DOMAIN = "last_domain"  # read by the intake handler
_DETAIL_WORDS = words("knowledge_detail")
_YES = words("knowledge_yes")
_CHOICE = re.compile(r"^\s*(?:第\s*)?([1-9])\s*(?:个|条|项)?\s*[.。!！]?\s*$")


def wants_detail(ctx: TurnContext) -> bool:
    """"详情" right after an answer: more of that answer (a request of its own, never a reply
    to a commissioner)."""
    return ctx.nlu.normalized.text.strip() in _DETAIL_WORDS and bool(ctx.state.data.get(LAST_ENTRY))


class KnowledgeHandler:
    name = "knowledge"
    flows = frozenset({SUGGEST_FLOW, CLARIFY_FLOW})

    def matches(self, ctx: TurnContext) -> Match | None:
        text = ctx.nlu.normalized.text.strip()
        if ctx.state.flow == SUGGEST_FLOW:
            ids = ctx.state.data.get("ids", [])
            if (m := _CHOICE.match(text)) and int(m.group(1)) <= len(ids):
                return Match("choice", {"entry_id": ids[int(m.group(1)) - 1]})
            if len(ids) == 1 and bare(text) in _YES:
                return Match("choice", {"entry_id": ids[0]})
        if ctx.state.flow == CLARIFY_FLOW:
            for domain in ctx.state.data.get("options", []):
                if DOMAIN_NAMES_ZH[domain] in text:
                    return Match("clarified", {"domain": domain})
        if wants_detail(ctx):
            return Match("detail", {"entry_id": ctx.state.data[LAST_ENTRY]})
        # A new question, not the answer to a pending choice: "fresh", so that while a
        # "您是不是想问" list is pending a demand ("帮我们安排一下检定") or a commissioner's
        # answer still reaches its handler first.
        if ctx.nlu.act == "inquiry":
            return Match("inquiry", fresh=True)
        return None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        if match.reason == "clarified":
            ctx.state.clear()
            return Outcome((ctx.say("kb_none", domain_name=DOMAIN_NAMES_ZH[match.data["domain"]]),))
        if match.reason in ("choice", "detail"):
            entry = ctx.knowledge.kb.get(match.data["entry_id"])
            if entry is None:  # the entry went away in a reload
                ctx.state.clear()
                return Outcome((ctx.say("not_understood"),))
            if match.reason == "choice":
                return self._answered(ctx, entry.id, render_entry(entry, ctx.texts))
            if not entry.detail:
                return Outcome((ctx.say("kb_no_detail"),))
            return Outcome((ctx.say("kb_detail", title=entry.title, detail=entry.detail.strip(), basis=entry.basis),))

        composed = compose_answer(ctx.kb_search(), ctx.nlu, ctx.texts)
        if composed.outcome == "answer" and composed.entry_id:
            return self._answered(ctx, composed.entry_id, composed.text)
        if composed.outcome == "suggest":
            ctx.state.enter(SUGGEST_FLOW, ids=list(composed.suggestions))
        elif composed.outcome == "clarify":
            ctx.state.enter(CLARIFY_FLOW, options=list(composed.clarify))
        else:
            ctx.state.clear()
        if composed.outcome in ("none", "clarify"):
            await log_gap(ctx.session, ctx.message.text, ctx.now)
        return Outcome((Reply(composed.text, composed.choices),))

    @staticmethod
    def _answered(ctx: TurnContext, entry_id: str, text: str) -> Outcome:
        """Remember what was answered: "详情" shows its detail, and a "好的/要办理" right after
        an answer in a service domain starts a demand in that domain."""
        ctx.state.clear()
        ctx.state.data[LAST_ENTRY] = entry_id
        entry = ctx.knowledge.kb.get(entry_id)
        if entry is not None and entry.domain in DOMAIN_NAMES_ZH and entry.domain != OUT_OF_SCOPE:
            ctx.state.data[LAST_DOMAIN] = entry.domain
        return Outcome((Reply(text),))


__all__ = ["ComposedAnswer", "KnowledgeHandler", "compose_answer", "render_entry", "wants_detail"]
