"""The conversation driver: what a test reads is what the user would see."""

from __future__ import annotations

from bot.messages import InboundMessage
from bot.runtime import Runtime


class Chat:
    """A conversation as a test reads it: ``await chat.say("你好")`` returns the bot's replies."""

    def __init__(self, runtime: Runtime, user: str = "tester", channel: str = "cli") -> None:
        self.runtime = runtime
        self.user = user
        self.channel = channel

    async def say(self, text: str, message_id: str | None = None) -> list[str]:
        result = await self.runtime.dialogue.handle(
            InboundMessage(channel=self.channel, user_id=self.user, text=text, message_id=message_id)
        )
        return [reply.text for reply in result.replies]

    def as_user(self, user: str) -> Chat:
        return Chat(self.runtime, user, self.channel)
