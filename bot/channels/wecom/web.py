"""Wiring WeCom into the aiohttp app: ``GET/POST /wecom/callback``. The notifiers are not built
here (:mod:`bot.channels.wecom.channel`): every delivering process builds them, serving or not.

``GET`` is the URL check (decrypt ``echostr``, answer its plaintext). ``POST`` is always
encrypted; a body over ``max_body_bytes`` gets 413, a bad signature or stale timestamp 403,
malformed XML or an ``<!ENTITY`` 400 — each with one log line and never a 500. A command is
answered with an encrypted passive reply, well inside WeCom's 5-second deadline (a command is
one short transaction).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.channels.base import ChannelDeps
from bot.channels.replay import ReplayGuard, Seen
from bot.channels.wecom.commands import Deps, WeComDesk
from bot.channels.wecom.crypto import CallbackRejected, WeComCrypto
from bot.channels.wecom.inbound import parse_xml, reply_xml, to_message
from bot.channels.wecom.settings import WeComSettings

log = logging.getLogger(__name__)

CALLBACK_PATH = "/wecom/callback"


class WeComChannel:
    """What the routes need; ``desk`` exists while the app runs."""

    def __init__(self, config: WeComSettings, max_body_bytes: int) -> None:
        self.config = config
        self.max_body_bytes = max_body_bytes
        self.crypto = WeComCrypto(config.token, config.aes_key, config.corp_id)
        self.desk: WeComDesk | None = None
        self.replay: ReplayGuard | None = None  # with the runtime's database

    async def verify(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            plain = self.crypto.verify_url(query.get("msg_signature", ""), query.get("timestamp", ""),
                                           query.get("nonce", ""), query.get("echostr", ""))
        except CallbackRejected as exc:
            log.warning("wecom URL check refused: %s", exc.reason)
            return web.Response(status=exc.status, text="refused")
        return web.Response(text=plain)

    async def receive(self, request: web.Request) -> web.Response:
        limit = self.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return web.Response(status=413, text="too large")
        desk, replay = self.desk, self.replay
        if desk is None or replay is None:
            return web.Response(status=503, text="starting")
        query = request.query
        try:
            raw = await request.read()
            body = raw.decode("utf-8")
            encrypted = parse_xml(body).get("Encrypt")
            if not isinstance(encrypted, str) or not encrypted:
                raise CallbackRejected(400, "no <Encrypt> in the body")
            inner = self.crypto.decrypt(encrypted, query.get("msg_signature", ""), query.get("timestamp", ""),
                                        query.get("nonce", ""))
            seen = await replay.check("wecom", query.get("msg_signature", ""), query.get("timestamp", ""),
                                      query.get("nonce", ""), raw)
            if seen is Seen.REPLAY:
                raise CallbackRejected(409, "signature and nonce already used with another body (replay)")
            message = to_message(parse_xml(inner), self.config.agent_id)
        except UnicodeDecodeError:
            log.warning("wecom callback refused: body is not UTF-8")
            return web.Response(status=400, text="refused")
        except CallbackRejected as exc:
            log.warning("wecom callback refused: %s", exc.reason)
            return web.Response(status=exc.status, text="refused")
        answer = await desk.handle(message)
        if not answer:
            return web.Response(text="")  # an empty 200: nothing to say, and no retry
        reply = reply_xml(message, answer, self.config.corp_id)
        return web.Response(text=self.crypto.encrypt(reply, query.get("nonce", "")), content_type="application/xml")


CHANNEL = web.AppKey("wecom_channel", WeComChannel)


def setup(app: web.Application, deps_key: web.AppKey[ChannelDeps], config: WeComSettings,
          max_body_bytes: int) -> None:
    channel = WeComChannel(config, max_body_bytes)
    app[CHANNEL] = channel

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        deps = app[deps_key]
        channel.replay = ReplayGuard.from_settings(deps.settings, deps.sessions, channel.crypto.window)
        channel.desk = WeComDesk(Deps(sessions=deps.sessions, wake=deps.wake, clock=deps.clock,
                                      tz=deps.policy.calendar.tz, public_url=deps.settings.public_url))
        yield
        replay, channel.desk, channel.replay = channel.replay, None, None
        if replay is not None:
            await replay.close()

    app.cleanup_ctx.append(lifetime)
    app.router.add_get(CALLBACK_PATH, channel.verify)
    app.router.add_post(CALLBACK_PATH, channel.receive)
