"""What a handler is: a pure ``matches`` that says whether a turn concerns it, and an async
``handle`` that does the work and returns the replies. Conversation state lives in
``ctx.state`` and is saved by the engine in the same transaction as the messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import InboundMessage, Reply
from bot.services.conversations import DialogueState
from bot.storage.models import ChannelIdentity

if TYPE_CHECKING:
    from bot.services.knowledge import KnowledgeService
    from bot.services.limits import Limiter
    from bot.services.policy import ServicePolicy
    from handlers.texts import Texts
    from intents.classifier import NluResult
    from knowledge.retriever import SearchResult


@dataclass
class TurnContext:
    message: InboundMessage
    nlu: NluResult
    state: DialogueState
    identity: ChannelIdentity
    session: AsyncSession
    knowledge: KnowledgeService
    texts: Texts
    now: datetime
    policy: ServicePolicy
    first_contact: bool = False  # the user's very first message on this channel
    limits: Limiter | None = None  # abuse limits (bot/services/limits.py); None: none apply
    _search: SearchResult | None = field(default=None, repr=False)

    @property
    def language(self) -> str:
        return self.nlu.normalized.language

    def kb_search(self) -> SearchResult:
        """The knowledge base's result for this message, searched once per turn: flows that wait
        for an answer ask whether the message is a question the base answers, and the knowledge
        handler then answers from the same result."""
        if self._search is None:
            self._search = self.knowledge.search(self.message.text)
        return self._search

    def say(self, key: str, *, choices: tuple[str, ...] = (), **values: Any) -> Reply:
        """A reply from the texts file, in the user's language."""
        return Reply(self.texts.render(key, self.language, **values), choices=choices)


@dataclass(frozen=True, slots=True)
class Match:
    """Why a handler took the turn; handlers pass themselves details through ``data``."""

    reason: str
    data: dict[str, Any] = field(default_factory=dict)
    # True when the owner of the user's flow takes the message as something new, not as the
    # answer its flow waits for (a fresh question while "您是不是想问" is pending): the message
    # then goes to the handlers in priority order, so a demand or a commissioner's answer comes
    # before another question.
    fresh: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    replies: tuple[Reply, ...]
    # Let the next matching handler answer the same message too (e.g. a live session that just
    # timed out: say so, then answer the message normally).
    then_dispatch: bool = False
    # With ``then_dispatch``: the flow steps aside for this one message (a question or a photo
    # in the middle of a form). The next handlers answer it as if no flow were active; then the
    # flow's state comes back and these replies (the pending question again) follow -- unless
    # the message started another flow (a handoff, a "您是不是想问" list), which then wins.
    resume: tuple[Reply, ...] = ()


class Handler(Protocol):
    name: str
    # The conversation flows this handler owns: while the user is in one of them, the handler
    # is asked first, before the act-keyed handlers.
    flows: frozenset[str]

    def matches(self, ctx: TurnContext) -> Match | None: ...

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome: ...
