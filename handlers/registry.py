"""The explicit, ordered list of handlers. Order is priority: the first that matches wins, so
handlers that own an ongoing flow come before the ones keyed on the NLU act."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.base import Handler, Match, TurnContext
from handlers.knowledge import KnowledgeHandler
from handlers.smalltalk import (
    FallbackHandler,
    GreetingHandler,
    HelpHandler,
    NonTextHandler,
    ThanksHandler,
    WelcomeHandler,
)


class HandlerRegistry:
    def __init__(self, handlers: Sequence[Handler]) -> None:
        names = [h.name for h in handlers]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate handler names: {names}")
        self._handlers = tuple(handlers)

    @property
    def handlers(self) -> tuple[Handler, ...]:
        return self._handlers

    def select(self, ctx: TurnContext) -> tuple[Handler, Match]:
        for handler in self._handlers:
            match = handler.matches(ctx)
            if match is not None:
                return handler, match
        raise LookupError("no handler matched; the registry must end with a fallback")


def default_handlers() -> HandlerRegistry:
    return HandlerRegistry(
        [
            WelcomeHandler(),
            NonTextHandler(),
            KnowledgeHandler(),
            GreetingHandler(),
            HelpHandler(),
            ThanksHandler(),
            FallbackHandler(),
        ]
    )
