"""The explicit, ordered list of handlers. Order is priority: the first that matches wins, so
handlers that own an ongoing flow come before the ones keyed on the NLU act."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.base import Handler, Match, TurnContext
from handlers.cancel import CancelHandler
from handlers.case_message import CaseMessageHandler
from handlers.complaint import ComplaintHandler
from handlers.consent import ContactGateHandler
from handlers.handoff import HandoffHandler, LiveHandler
from handlers.intake import IntakeHandler
from handlers.knowledge import KnowledgeHandler
from handlers.progress import ProgressHandler
from handlers.rating import RatingHandler
from handlers.smalltalk import ActReplyHandler, FallbackHandler, NonTextHandler, WelcomeHandler


class HandlerRegistry:
    def __init__(self, handlers: Sequence[Handler]) -> None:
        names = [h.name for h in handlers]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate handler names: {names}")
        self._handlers = tuple(handlers)

    @property
    def handlers(self) -> tuple[Handler, ...]:
        return self._handlers

    def select(self, ctx: TurnContext, exclude: frozenset[str] = frozenset()) -> tuple[Handler, Match]:
        """The owner of the user's current flow if it takes the message as part of its flow,
        else the first handler in priority order that takes it."""
        candidates = [h for h in self._handlers if h.name not in exclude]
        if ctx.state.flow is not None:
            for handler in candidates:
                if ctx.state.flow in handler.flows and (match := handler.matches(ctx)) is not None \
                        and not match.fresh:
                    return handler, match
        for handler in candidates:
            match = handler.matches(ctx)
            if match is not None:
                return handler, match
        raise LookupError("no handler matched; the registry must end with a fallback")


def default_handlers() -> HandlerRegistry:
    """Priority order when no flow is active. ``LiveHandler`` comes first of the text handlers
    so that nothing else ever answers while a person is on the line. ``CaseMessageHandler``
    comes next: while a commissioner is talking with the enterprise about a case, whatever is
    not clearly a new request is for that commissioner, so it must see the message before the
    others (which would take "好的" for yes to an offer, thank, file a complaint, or answer from
    the knowledge base); it declines clear requests itself, so their handlers still get them."""
    return HandlerRegistry(
        [
            WelcomeHandler(),
            LiveHandler(),
            NonTextHandler(),
            CaseMessageHandler(),
            IntakeHandler(),
            ContactGateHandler(),  # only in its flow: a web visitor's mobile before a person is paged
            HandoffHandler(),
            ProgressHandler(),
            CancelHandler(),
            ComplaintHandler(),
            RatingHandler(),
            KnowledgeHandler(),
            ActReplyHandler("greeting", "greeting", first_contact_key="welcome", menu=True),
            ActReplyHandler("help", "menu", menu=True),
            ActReplyHandler("thanks_bye", "thanks_bye"),
            FallbackHandler(),
        ]
    )
