"""The dialogue engine: the one path every message takes, whatever the channel.

    channel adapter → InboundMessage → engine.handle():
        identity (channel user → enterprise) → message log (de-duplicated by message id)
        → NLU (act + domain) → conversation state → first matching handler → replies
        → state, replies and log committed in one transaction → replies in the user's script

A failing handler never loses the message: its database changes roll back to a savepoint, the
inbound message and an apology are still committed, and the error is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import metrics
from bot.dialogue.locks import KeyedLocks
from bot.messages import InboundMessage, Reply, TurnResult
from bot.services import conversations, identities, message_log, outbox
from bot.services.knowledge import KnowledgeService
from bot.services.limits import Limiter
from bot.services.policy import ServicePolicy
from bot.storage.db import transaction
from bot.storage.outage import is_unavailable
from bot.storage.types import utcnow
from handlers.base import Outcome, TurnContext
from handlers.registry import HandlerRegistry
from handlers.texts import Texts
from intents.classifier import NluResult
from intents.normalize import to_script

log = logging.getLogger(__name__)

TURNS_IN_TRANSACTION = 8  # below the pool's 10 connections, leaving some for the dispatcher and jobs


class NluPort(Protocol):
    def parse(self, text: str) -> NluResult: ...


class DialogueEngine:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        nlu: NluPort,
        knowledge: KnowledgeService,
        registry: HandlerRegistry,
        texts: Texts,
        *,
        policy: ServicePolicy | None = None,
        max_message_chars: int = 2000,
        clock: Callable[[], datetime] = utcnow,
        limits: Limiter | None = None,
    ) -> None:
        self.sessions = sessions
        self.limits = limits  # abuse limits: message rates here, opening quotas in the handlers
        self.nlu = nlu
        self.knowledge = knowledge
        self.registry = registry
        self.texts = texts
        self.policy = policy or ServicePolicy()
        self.max_message_chars = max_message_chars
        self.clock = clock
        self._locks = KeyedLocks()
        # SQLite has one writer: queue turns in this process in arrival order instead of letting
        # them collide in SQLite's busy handler, which sleeps and makes latency erratic.
        is_sqlite = sessions.kw.get("bind") is not None and sessions.kw["bind"].dialect.name == "sqlite"
        # PostgreSQL: at most as many turns in their transaction as the pool has connections,
        # admitted in arrival order; waiting in the pool instead is unordered and gave a p99
        # four times the median under load (bench/webhook.py).
        self._admission: contextlib.AbstractAsyncContextManager[object] = (
            asyncio.Lock() if is_sqlite else asyncio.Semaphore(TURNS_IN_TRANSACTION)
        )
        # Called after each committed turn; the runtime wakes the outbox dispatcher with it so
        # notifications a turn wrote (a new case for a commissioner) go out at once.
        self.on_commit: Callable[[], None] | None = None

    async def handle(self, message: InboundMessage) -> TurnResult:
        if self.limits is not None:
            refusal = await self.limits.check_message(message)
            if refusal is not None:
                # Refused before the lock, the NLU and the database: a flood costs a counter each,
                # not a turn. Nothing is stored; the user is asked to send it again a bit later.
                text = self.texts.render(refusal.text_key, message.language or "zh", **refusal.values)
                metrics.turn(message.channel, "refused")
                return TurnResult((Reply(text),))
        async with self._locks.hold((message.channel, message.user_id)):
            # Understanding the text needs no database: do it before the transaction, so the
            # write lock (SQLite) or the row locks (PostgreSQL) are held only for the I/O.
            with metrics.stage("nlu"):
                nlu = self.nlu.parse(message.text[: self.max_message_chars])
            metrics.NLU_RESULTS.labels(nlu.act, "choices" if nlu.ambiguous else "answer").inc()
            waited = time.perf_counter()
            async with self._admission:
                metrics.ADMISSION_WAIT.observe(time.perf_counter() - waited)
                try:
                    with metrics.stage("database"):  # what the handler does not claim: the turn's I/O
                        result = await self._handle_locked(message, nlu)
                except Exception as exc:
                    metrics.turn(message.channel, "busy" if is_unavailable(exc) else "failed")
                    raise
        metrics.turn(message.channel, "duplicate" if result.duplicate else "answered")
        return result

    async def _handle_locked(self, message: InboundMessage, nlu: NluResult) -> TurnResult:
        now = self.clock()
        async with transaction(self.sessions) as session:
            arrival = await identities.arrive(session, message.channel, message.user_id, now)
            identity = arrival.identity
            inbound_id = await message_log.record_inbound(
                session, identity.id, message, act=nlu.act, domain=nlu.domain, confidence=nlu.confidence
            )
            if inbound_id is None:
                first = await message_log.existing_inbound_id(session, identity.id, message.message_id or "")
                replies = await message_log.replies_to(session, first) if first is not None else ()
                log.info("duplicate message %s on %s: replaying %d replies", message.message_id, message.channel,
                         len(replies))
                return TurnResult(replies, duplicate=True)

            # Assigned only on change: an unchanged assignment still costs the ORM a flush.
            reply_script = nlu.normalized.reply_script
            if reply_script is not None and identity.script != reply_script:
                identity.script = reply_script
            language = message.language or nlu.normalized.language
            if identity.language != language:
                identity.language = language
            # A first contact has no stored state: one SELECT less (it would find nothing).
            state = (conversations.nothing_stored() if arrival.first_contact
                     else await conversations.load(session, identity.id))
            ctx = TurnContext(
                message=message,
                nlu=nlu,
                state=state,
                identity=identity,
                session=session,
                knowledge=self.knowledge,
                texts=self.texts,
                now=now,
                policy=self.policy,
                first_contact=arrival.first_contact,
                limits=self.limits,
            )
            # Messages that could not be pushed earlier (channel closed, outside a push window)
            # are handed over first, so nothing sent to this user is ever lost.
            held = await outbox.take_held(session, identity.id, now) if arrival.held else ()
            with metrics.stage("handler"):
                outcome = await self._dispatch(ctx, session)
            answers = tuple(self._localise(reply, identity.script, language) for reply in outcome.replies)
            await conversations.save(session, identity.id, state, now)
            # Held messages are already in the transcript (logged when they were sent).
            await message_log.record_outbound(session, identity.id, answers, inbound_id, now)
        if self.on_commit is not None:
            self.on_commit()
        return TurnResult((*held, *answers))

    async def _dispatch(self, ctx: TurnContext, session: AsyncSession) -> Outcome:
        text = ctx.message.text
        if ctx.message.kind == "text" and not text.strip():
            return Outcome((ctx.say("empty_message"),))
        if len(text) > self.max_message_chars:
            return Outcome((ctx.say("too_long", length=len(text), limit=self.max_message_chars),))
        replies: list[Reply] = []
        tried: set[str] = set()
        aside: tuple[str | None, dict[str, Any], tuple[Reply, ...]] | None = None  # a flow stepped aside
        while True:
            handler, match = self.registry.select(ctx, exclude=frozenset(tried))
            tried.add(handler.name)
            snapshot = (ctx.state.flow, copy.deepcopy(ctx.state.data))
            try:
                async with session.begin_nested():
                    outcome = await handler.handle(ctx, match)
            except Exception:
                log.exception("handler %s failed (reason %s)", handler.name, match.reason)
                ctx.state.flow, ctx.state.data = aside[:2] if aside is not None else snapshot
                return Outcome((*replies, ctx.say("internal_error")))
            replies.extend(outcome.replies)
            if outcome.then_dispatch and outcome.resume and aside is None:
                aside = (ctx.state.flow, copy.deepcopy(ctx.state.data), outcome.resume)
                ctx.state.clear()
            if not outcome.then_dispatch:
                if aside is not None and ctx.state.flow is None:  # back to the flow that stepped aside
                    ctx.state.flow, ctx.state.data = aside[0], aside[1]
                    replies.extend(aside[2])
                return Outcome(tuple(replies))

    @staticmethod
    def _localise(reply: Reply, script: str, language: str = "zh") -> Reply:
        """The reply in the user's script. An English reply (to an English message) is left as
        it is: its Chinese words are commands to type ("转人工"), shown as the texts spell
        them, not in the script of the user's earlier Chinese messages."""
        if script == "hans" or (language == "en" and _is_english(reply.text)):
            return reply
        return Reply(to_script(reply.text, script), tuple(to_script(c, script) for c in reply.choices))


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def _is_english(text: str) -> bool:
    """Mostly Latin letters: an English text, maybe quoting a Chinese command or two."""
    return len(_LATIN.findall(text)) > 2 * len(_CJK.findall(text))
