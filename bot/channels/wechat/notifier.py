"""Outbound messages to WeChat users through the customer-service API, within its rules.

WeChat accepts customer-service messages only within 48 hours of the user's last message and
at most 5 per user message (errcode 45015 otherwise). Outside those limits the notification is
``HELD``: the outbox keeps it and the engine hands it over with the answer to the user's next
message, so nothing is silently lost. The allowance is counted in the database
(:mod:`bot.channels.wechat.store`), so several workers share it.

A notification with ``choices`` in its payload ends with a menu message (``msgmenu``: the last
piece of text as its head, one tappable line per choice); if WeChat refuses the menu message
for any reason but the window or the allowance, the same piece goes out as text with the choices
as plain lines to type from, as it does when tappable choices are switched off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.wechat import store
from bot.channels.wechat.api import (
    MEDIA_GONE,
    NOT_FOLLOWING,
    OUT_OF_WINDOW,
    OVER_LIMIT,
    MediaTooLarge,
    WeChatApi,
    WeChatApiError,
    WeChatUnreachable,
)
from bot.channels.wechat.callback import CHANNEL
from bot.channels.wechat.render import MENU_HEAD_BYTES, menu_message, split_text, with_choices
from bot.channels.wechat.settings import WeChatSettings
from bot.channels.wechat.token import TokenUnavailable
from bot.notify.base import Delivery, Notification, NotifierUnavailable
from bot.services import materials
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity
from bot.storage.types import utcnow
from intents.normalize import to_script

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=48)


class HoldingNotifier:
    """The channel without AppID/AppSecret: nothing can be pushed, every message is held for
    the user's next message; a material cannot be downloaded, which its case page then says."""

    channel = CHANNEL

    def __init__(self, sessions: async_sessionmaker[AsyncSession] | None = None) -> None:
        self.sessions = sessions

    async def deliver(self, notification: Notification) -> Delivery:
        if notification.kind == materials.FETCH_KIND and self.sessions is not None:
            async with transaction(self.sessions) as session:
                await materials.fail(session, int(notification.payload.get("material_id") or 0),
                                     "未配置公众号 AppID/AppSecret，无法从微信取回", utcnow())
            return Delivery.SENT
        return Delivery.HELD


class WeChatNotifier:
    channel = CHANNEL

    def __init__(
        self,
        api: WeChatApi,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = utcnow,
        tappable: bool = True,
    ) -> None:
        self.api = api
        self.sessions = sessions
        self.clock = clock
        self.tappable = tappable

    @classmethod
    def from_config(cls, config: WeChatSettings, sessions: async_sessionmaker[AsyncSession]) -> WeChatNotifier:
        """The notifier for a configured account (needs QIBOT_WECHAT_APP_ID and _APP_SECRET);
        ``close()`` it when done."""
        api = WeChatApi(config.api_base_url, config.app_id, config.app_secret, sessions)
        return cls(api, sessions, tappable=config.tappable_choices)

    async def close(self) -> None:
        await self.api.close()

    async def deliver(self, notification: Notification) -> Delivery:
        if notification.kind == materials.FETCH_KIND:
            return await self._fetch_material(notification)
        text = notification.text.strip()
        if not text:
            return Delivery.SENT  # nothing to say
        choices = tuple(str(c) for c in notification.payload.get("choices") or () if str(c).strip())
        if not notification.payload.get("rendered"):  # engine replies come already in the user's script
            script = str(notification.payload.get("script") or "hans")
            text = to_script(text, script)
            choices = tuple(to_script(c, script) for c in choices)
        if choices and not self.tappable:
            text, choices = with_choices(text, choices, tappable=False), ()
        pieces = split_text(text)
        if choices and len(pieces[-1].encode()) > MENU_HEAD_BYTES:  # a menu message's head is shorter
            pieces = [*pieces[:-1], *split_text(pieces[-1], MENU_HEAD_BYTES)]
        now = self.clock()
        async with transaction(self.sessions) as session:
            identity = await self._identity(session, notification)
            if identity is None or not identity.subscribed:
                return Delivery.HELD
            opened = identity.last_inbound_at
            if opened is None or now - opened >= WINDOW:
                return Delivery.HELD
            if not await store.reserve(session, identity.id, opened, len(pieces)):
                return Delivery.HELD
            identity_id, openid = identity.id, identity.external_id
        # A long text goes out in pieces; if WeChat refuses one midway, the whole text is held and
        # handed over later (the user may see the first pieces twice: better than losing the rest).
        sent = 0
        try:
            for index, piece in enumerate(pieces, 1):
                if choices and index == len(pieces):
                    await self._send_menu(openid, piece, choices)
                else:
                    await self.api.send_text(openid, piece)
                sent += 1
        except WeChatApiError as exc:
            async with transaction(self.sessions) as session:
                if exc.errcode in (OUT_OF_WINDOW, OVER_LIMIT, NOT_FOLLOWING):
                    await store.exhaust(session, identity_id, opened)
                    log.info("outbox %d held: WeChat errcode %d", notification.id, exc.errcode)
                    return Delivery.HELD
                await store.give_back(session, identity_id, opened, len(pieces) - sent)
            raise NotifierUnavailable(str(exc)) from None
        except (WeChatUnreachable, TokenUnavailable) as exc:
            async with transaction(self.sessions) as session:
                await store.give_back(session, identity_id, opened, len(pieces) - sent)
            raise NotifierUnavailable(str(exc)) from None
        return Delivery.SENT

    async def _fetch_material(self, notification: Notification) -> Delivery:
        """Download an image or file the enterprise sent and keep it on its case. WeChat keeps
        temporary media three days: a retry (the outbox's backoff) within them gets it, an
        invalid or expired id is recorded as a failure, shown on the case page."""
        material_id = int(notification.payload.get("material_id") or 0)
        media_id = str(notification.payload.get("media_id") or "")
        try:
            content, filename = await self.api.download_media(media_id, materials.MAX_BYTES)
        except WeChatApiError as exc:
            if exc.errcode not in MEDIA_GONE:
                raise NotifierUnavailable(str(exc)) from None
            async with transaction(self.sessions) as session:
                await materials.fail(session, material_id, "微信已不再提供该文件（超过 3 天或无效）", self.clock())
            return Delivery.SENT
        except MediaTooLarge:
            async with transaction(self.sessions) as session:
                await materials.fail(session, material_id, "文件过大，未保存", self.clock())
            return Delivery.SENT
        except (WeChatUnreachable, TokenUnavailable) as exc:
            raise NotifierUnavailable(str(exc)) from None
        async with transaction(self.sessions) as session:
            await materials.store(session, material_id, content, filename=filename, now=self.clock())
        return Delivery.SENT

    async def _send_menu(self, openid: str, head: str, choices: tuple[str, ...]) -> None:
        try:
            await self.api.send_menu(menu_message(openid, head, choices))
        except WeChatApiError as exc:
            if exc.errcode in (OUT_OF_WINDOW, OVER_LIMIT, NOT_FOLLOWING):
                raise
            # e.g. 40200 "invalid account type" (test accounts): the choices as lines to type
            log.info("menu message refused (errcode %d): sending the choices as text", exc.errcode)
            await self.api.send_text(openid, with_choices(head, choices, tappable=False))

    async def _identity(self, session: AsyncSession, notification: Notification) -> ChannelIdentity | None:
        if notification.identity_id is not None:
            identity = await session.get(ChannelIdentity, notification.identity_id)
            if identity is not None and identity.channel == CHANNEL:
                return identity
        return (
            await session.execute(
                select(ChannelIdentity).where(
                    ChannelIdentity.channel == CHANNEL, ChannelIdentity.external_id == notification.recipient
                )
            )
        ).scalar_one_or_none()
