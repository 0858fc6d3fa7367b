"""``GET/POST /wechat``: the Official Account callback, answered within WeChat's 5 seconds.

A callback is verified (signature or msg_signature in constant time, timestamp window, AppID),
parsed into one ``InboundMessage`` and handed to the engine. Then:

* the engine is done within ``wechat_reply_budget`` → a passive reply (all replies joined into
  one text message; only text beyond WeChat's size limit is pushed as a follow-up);
* it is not → ``success`` now, and the answer is pushed through the customer-service API via
  the outbox once the engine is done.

WeChat retries a callback it got no answer to, possibly while the first is still running. In
this process a retry joins the running turn (``_turns``): it waits for the same task within its
own budget, or answers ``success`` if an earlier request already promised a push. A retry that
reaches another worker, or arrives after the turn ended, gets ``duplicate=True`` from the
engine; a claim row (:func:`store.claim`) then decides atomically between replaying the first
answer passively and ``success`` (the push owns it), so the user never sees two answers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from wechatpy.exceptions import InvalidAppIdException

from bot import metrics
from bot.channels.base import ChannelDeps
from bot.channels.replay import ReplayGuard, Seen
from bot.channels.wechat import store
from bot.channels.wechat.callback import CHANNEL, Callback, parse_xml, to_callback
from bot.channels.wechat.crypto import CallbackCrypto, CallbackRejected, signature
from bot.channels.wechat.menu import Menu, default_menu
from bot.channels.wechat.render import format_replies, push_parts, split_text, text_reply
from bot.channels.wechat.settings import WeChatSettings
from bot.messages import TurnResult
from bot.privacy import redact
from bot.services import identities, outbox
from bot.storage.db import transaction
from bot.storage.outage import OUTAGE, is_unavailable
from bot.storage.types import utcnow

log = logging.getLogger(__name__)

PATH = "/wechat"
MAX_BODY = 32 * 1024  # a WeChat callback is a few hundred bytes; an encrypted one about 1.4x
SUCCESS = "success"  # "answered, no passive reply, don't retry"
LATE_RETRIES = (1.0, 4.0, 15.0)  # seconds before running a failed late turn again
_PARAM = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_ECHOSTR = re.compile(r"^[\x21-\x7e]{1,256}$")


@dataclass
class _Turn:
    task: asyncio.Task[TurnResult]
    late: bool = False  # a request gave up waiting and answered "success": the answer is pushed


class WeChatChannel:
    """The input half of the channel, for one process."""

    def __init__(self, deps: ChannelDeps, config: WeChatSettings, *, menu: Menu | None = None,
                 crypto: CallbackCrypto | None = None) -> None:
        self.deps = deps
        self.dialogue = deps.require_dialogue()
        self.mode = config.mode
        self.budget = config.reply_budget
        self.tappable = config.tappable_choices
        self.max_body = min(MAX_BODY, deps.settings.max_body_bytes)
        self.menu = menu or default_menu()
        self.crypto = crypto or CallbackCrypto(config.token, config.app_id, config.aes_key,
                                               window=config.timestamp_window)
        self._turns: dict[str, _Turn] = {}
        self._background: set[asyncio.Task[None]] = set()
        # The plaintext signature does not cover the body: a signed URL must not carry a second one.
        self.replay = ReplayGuard.from_settings(deps.settings, deps.sessions, config.timestamp_window)

    # --- HTTP ------------------------------------------------------------------------------

    async def verify_url(self, request: web.Request) -> web.Response:
        """The console's URL check: echo ``echostr`` if the signature is ours."""
        query = request.query
        try:
            echostr = query.get("echostr", "")
            if not _ECHOSTR.match(echostr):
                raise CallbackRejected(400, "echostr missing or malformed")
            self._check_params(query, "signature")
            self.crypto.verify(query.get("signature", ""), query.get("timestamp", ""), query.get("nonce", ""))
        except CallbackRejected as exc:
            return _refused(request, exc.status, exc.reason)
        return web.Response(text=echostr, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        try:
            return await self._receive(request)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            # The database is down (the replay memory, the turn, the subscription): nothing was
            # committed. WeChat retries a callback it gets no answer to, so it gets none: the
            # connection is closed without a response (a 5xx would show the user 该公众号暂时无法
            # 提供服务 and is not retried). One warning per outage, no traceback per callback.
            OUTAGE.mark_down(exc)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503, text="temporarily unavailable", content_type="text/plain")

    async def _receive(self, request: web.Request) -> web.Response:
        deadline = asyncio.get_running_loop().time() + self.budget
        try:
            callback, encrypted, nonce = await self._read(request)
        except CallbackRejected as exc:
            return _refused(request, exc.status, exc.reason)
        except InvalidAppIdException:
            return _refused(request, 403, "message for another AppID")
        if callback.subscribed is not None:
            async with transaction(self.deps.sessions) as session:
                await store.set_subscribed(session, callback.openid, callback.subscribed)
        if callback.inbound is None:
            return web.Response(text=SUCCESS, content_type="text/plain")
        try:
            content = await self._answer(callback, deadline)
        except Exception as exc:
            if is_unavailable(exc):
                raise  # no answer at all: see receive
            # Nothing was committed (the engine rolls back), so WeChat's retry can succeed. The
            # error text may quote the user's message (SQL parameters): masked, no traceback.
            log.error("wechat: turn for message %s failed: %s", callback.inbound.message_id, _masked(exc))
            return web.Response(status=503, text="temporarily unavailable", content_type="text/plain")
        if content is None:
            return web.Response(text=SUCCESS, content_type="text/plain")
        metrics.WECHAT_REPLIES.labels("passive").inc()
        xml = text_reply(callback.openid, callback.account, content, int(time.time()))
        if encrypted:
            xml = self.crypto.encrypt(xml, nonce)
        return web.Response(text=xml, content_type="application/xml")

    def _check_params(self, query: Any, signature_name: str) -> None:
        for name in ("timestamp", "nonce", signature_name):
            if not _PARAM.match(query.get(name, "")):
                raise CallbackRejected(400 if name != signature_name else 403, f"{name} missing or malformed")

    async def _read(self, request: web.Request) -> tuple[Callback, bool, str]:
        if request.content_length is not None and request.content_length > self.max_body:
            raise CallbackRejected(413, f"body of {request.content_length} bytes over {self.max_body}")
        body = await request.read()
        if len(body) > self.max_body:
            raise CallbackRejected(413, f"body of {len(body)} bytes over {self.max_body}")
        query = request.query
        encrypted = query.get("encrypt_type", "raw").lower() == "aes"
        if encrypted and self.mode == "plain":
            raise CallbackRejected(400, "encrypted callback, but the channel is configured for plaintext")
        if not encrypted and self.mode == "safe":
            raise CallbackRejected(403, "plaintext callback refused in safe mode")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackRejected(400, "body is not UTF-8") from None
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            raise CallbackRejected(400, "DOCTYPE/ENTITY declarations are not accepted")
        nonce = query.get("nonce", "")
        if encrypted:
            self._check_params(query, "msg_signature")
            envelope = parse_xml(text)
            cipher = envelope.get("Encrypt")
            if not isinstance(cipher, str) or not cipher:
                raise CallbackRejected(400, "encrypted callback without Encrypt")
            text = self.crypto.decrypt(cipher, query["msg_signature"], query["timestamp"], nonce)
        else:
            self._check_params(query, "signature")
            self.crypto.verify(query["signature"], query["timestamp"], nonce)
        # Safe mode needs no replay memory: only encrypted callbacks are accepted there, and their
        # msg_signature covers the ciphertext, the one part of the body that is read (the envelope
        # around it is not). A second request under the same signed URL is therefore the same
        # message: WeChat's retry, answered once by the message-id de-duplication, which is what
        # the guard would let through as well. Skipping it saves a database transaction (or a
        # Redis round trip) per callback. Plain and compatible mode accept plaintext bodies the
        # signature does not cover: there every callback is remembered.
        if self.mode != "safe":
            # Remembered under the plaintext signature (token, timestamp, nonce), whichever way
            # the callback came: in compatible mode the URL of an encrypted callback carries it
            # too, so a plaintext body posted under that URL without encrypt_type meets the
            # encrypted callback's record and is refused (under msg_signature it was not).
            signed_by = signature(self.crypto.token, query["timestamp"], nonce)
            if await self.replay.check(CHANNEL, signed_by, query["timestamp"], nonce, body) is Seen.REPLAY:
                raise CallbackRejected(409, "signature and nonce already used with another body (replay)")
        return to_callback(text, self.menu), encrypted, nonce

    # --- the answer ------------------------------------------------------------------------

    async def _answer(self, callback: Callback, deadline: float) -> str | None:
        """The passive reply text, or None for "success"."""
        assert callback.inbound is not None
        key = callback.key
        turn = self._turns.get(key)
        if turn is None:
            turn = _Turn(asyncio.create_task(self.dialogue.handle(callback.inbound)))
            self._turns[key] = turn
            turn.task.add_done_callback(partial(self._settled, key, turn))
        elif turn.late:
            return None
        loop = asyncio.get_running_loop()
        done, _ = await asyncio.wait({turn.task}, timeout=max(deadline - loop.time(), 0.0))
        if turn.late:  # another request for this message gave up meanwhile and promised a push
            return None
        if not done:
            turn.late = True
            self._spawn(self._push_late(callback, turn))
            log.info("wechat: message %s over the %.1fs budget; answering by push", callback.inbound.message_id,
                     self.budget)
            return None
        result = turn.task.result()
        if result.duplicate and result.replies:
            async with transaction(self.deps.sessions) as session:
                if await store.claim(session, key, "passive", utcnow()) == "push":
                    return None
        return await self._passive(callback, result)

    def _settled(self, key: str, turn: _Turn, _task: asyncio.Task[TurnResult]) -> None:
        if not turn.late and self._turns.get(key) is turn:
            del self._turns[key]

    async def _passive(self, callback: Callback, result: TurnResult) -> str | None:
        text = format_replies(result.replies, tappable=self.tappable)
        if not text:
            return None
        first, *rest = split_text(text)
        if rest:
            await self._enqueue(callback, "\n\n".join(rest), "wechat-more")
        return first

    async def _push_late(self, callback: Callback, turn: _Turn) -> None:
        key = callback.key
        try:
            result = await self._finish(callback, turn.task)
            text, choices = push_parts(result.replies, tappable=self.tappable)
            if text:
                async with transaction(self.deps.sessions) as session:
                    won = await store.claim(session, key, "push", utcnow()) == "push"
                if won:
                    await self._enqueue(callback, text, "wechat-late", choices)
                    metrics.WECHAT_REPLIES.labels("pushed").inc()
                else:
                    log.info("wechat: late answer to %s not pushed: a retry replayed it", key)
        except Exception as exc:
            log.error("wechat: late turn for %s failed, nothing to push: %s", key, _masked(exc))
        finally:
            if self._turns.get(key) is turn:
                del self._turns[key]

    async def _finish(self, callback: Callback, task: asyncio.Task[TurnResult]) -> TurnResult:
        """The result of a turn whose answer was promised ("success" was sent): WeChat will not
        retry it, so a failed turn (nothing committed, e.g. a locked database) is run again."""
        assert callback.inbound is not None
        for delay in LATE_RETRIES:
            try:
                return await task
            except Exception as exc:
                log.warning("wechat: late turn for %s failed, again in %.0fs: %s", callback.key, delay, _masked(exc))
            await asyncio.sleep(delay)
            task = asyncio.create_task(self.dialogue.handle(callback.inbound))
        return await task

    async def _enqueue(self, callback: Callback, text: str, prefix: str, choices: tuple[str, ...] = ()) -> None:
        now = utcnow()
        payload: dict[str, Any] = {"text": text, "rendered": True}
        if choices:  # sent as a menu message by the notifier
            payload["choices"] = list(choices)
        async with transaction(self.deps.sessions) as session:
            identity = await identities.find(session, CHANNEL, callback.openid)
            await outbox.enqueue(
                session,
                channel=CHANNEL,
                recipient=callback.openid,
                kind="reply",
                payload={**payload, "script": identity.script if identity else "hans"},
                now=now,
                identity_id=identity.id if identity else None,
                dedup_key=store.dedup_key(prefix, callback.key),
            )
        self.deps.wake()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, grace: float = 10.0) -> None:
        """At shutdown: let promised pushes reach the outbox."""
        pending = [t for t in self._background if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=grace)


def _masked(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")[:500]


def _refused(request: web.Request, status: int, reason: str) -> web.Response:
    log.warning("wechat: callback refused with %d from %s: %s", status, request.remote, redact(reason))
    return web.Response(status=status, text=f"refused: {reason}" if status != 403 else "forbidden",
                        content_type="text/plain")


CHANNEL_KEY = web.AppKey("wechat_channel", WeChatChannel)


def plaintext_mode_warning(config: WeChatSettings, public_url: str) -> str | None:
    """The start-up warning for a public deployment that accepts plaintext callbacks: their
    signature does not cover the body, so safe mode (encrypted only) is the recommended mode;
    replays are refused either way (:mod:`bot.channels.replay`)."""
    mode = config.mode
    host = (urlsplit(public_url).hostname or "").lower()
    if mode == "safe" or not host or host in ("localhost", "127.0.0.1", "::1"):
        return None
    return (f"wechat: QIBOT_WECHAT_MODE={mode} on {host}: plaintext callbacks are signed without their body; "
            "use safe mode (安全模式: an EncodingAESKey and QIBOT_WECHAT_MODE=safe) in production")


def setup(app: web.Application, deps_key: web.AppKey[ChannelDeps], config: WeChatSettings) -> None:
    """Mount ``/wechat``; once the app has started, the channel answers callbacks with the
    dialogue engine. Its notifier is not built here (:mod:`bot.channels.wechat.channel`): every
    delivering process builds it, serving or not."""

    async def wechat_ctx(app: web.Application) -> AsyncIterator[None]:
        deps = app[deps_key]
        channel = WeChatChannel(deps, config)
        app[CHANNEL_KEY] = channel
        if warning := plaintext_mode_warning(config, deps.settings.public_url):
            log.warning(warning)
        yield
        await channel.drain()
        await channel.replay.close()

    async def get(request: web.Request) -> web.Response:
        return await request.app[CHANNEL_KEY].verify_url(request)

    async def post(request: web.Request) -> web.Response:
        return await request.app[CHANNEL_KEY].receive(request)

    app.cleanup_ctx.append(wechat_ctx)
    app.router.add_get(PATH, get)
    app.router.add_post(PATH, post)
