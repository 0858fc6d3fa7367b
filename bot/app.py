"""The aiohttp application factory: composes channels, health checks and error handling.

Shared objects live under typed ``web.AppKey``s; the runtime is opened and closed in a
``cleanup_ctx`` generator, so tests and ``qibot serve`` build the app the same way. Every enabled
channel of :mod:`bot.channels.registry` is mounted; channels read their dependencies from
``app[CHANNEL_DEPS]`` once the app has started.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from aiohttp import WSCloseCode, web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from bot import metrics
from bot.channels import edge, registry
from bot.channels.base import ChannelDeps
from bot.config import Settings
from bot.console import setup_console
from bot.dialogue.engine import NluPort
from bot.jobs import run_jobs_forever
from bot.privacy import REQUEST_ID, install_client_error_filter
from bot.runtime import Runtime
from bot.services.knowledge import KnowledgeService
from bot.services.limits import client_address, parse_networks
from bot.storage import db
from bot.storage.models import Outbox
from bot.storage.outage import OUTAGE, is_unavailable

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
RUNTIME = web.AppKey("runtime", Runtime)
CHANNEL_DEPS = web.AppKey("channel_deps", ChannelDeps)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request gets an id (nginx's ``X-Request-Id`` when it sends a sane one) that every
    log line written while serving it carries, and is measured as a turn if it runs one."""
    given = request.headers.get("X-Request-Id", "")
    request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
    token = REQUEST_ID.set(request_id)
    try:
        with metrics.turn_scope():
            response = await handler(request)
        if not response.prepared:
            response.headers["X-Request-Id"] = request_id
        return response
    finally:
        REQUEST_ID.reset(token)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bad input gets a 4xx with a clear JSON message; an unexpected error is logged and gets a
    generic 500 that reveals nothing internal. On a connection already upgraded to a WebSocket
    no HTTP response can follow: the socket is closed with 1011 (internal error) instead."""
    try:
        return await handler(request)
    except web.HTTPException:
        if (ws := edge.upgraded(request)) is not None:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION)
            return ws
        raise
    except UnicodeDecodeError:
        if (ws := edge.upgraded(request)) is not None:
            await ws.close(code=WSCloseCode.UNSUPPORTED_DATA)
            return ws
        return web.json_response({"error": "request body is not valid UTF-8"}, status=400)
    except Exception as exc:
        if is_unavailable(exc):
            return await _busy(request, exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        if (ws := edge.upgraded(request)) is not None:
            await ws.close(code=WSCloseCode.INTERNAL_ERROR)
            return ws
        return web.json_response({"error": "internal error"}, status=500)


def busy_text(app: web.Application) -> str:
    """The polite "busy" text users read while the database is unreachable (``handlers/texts.yaml``)."""
    runtime = app.get(RUNTIME)
    dialogue = runtime.dialogue if runtime is not None else None
    return dialogue.texts.render("busy") if dialogue is not None else "系统繁忙，请稍后再试"


async def _busy(request: web.Request, exc: BaseException) -> web.StreamResponse:
    """The database is unreachable: one warning per outage (not a traceback per request), and a
    503 with the "busy" text, or on a WebSocket an error frame and a close with 1013 (try again
    later). Nothing of the request was committed, so sending it again is safe."""
    OUTAGE.mark_down(exc)
    text = busy_text(request.app)
    if (ws := edge.upgraded(request)) is not None:
        if not ws.closed:
            await ws.send_json({"type": "error", "error": text, "busy": True})
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"database unavailable")
        return ws
    return web.json_response({"error": text, "busy": True}, status=503, headers={"Retry-After": "5"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        await db.ping(runtime.engine)
    except Exception as exc:  # the database is down or unreachable
        if is_unavailable(exc):
            OUTAGE.mark_down(exc)  # logged once per outage, not at every probe
        else:
            log.warning("readiness check failed: %s", type(exc).__name__)
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    OUTAGE.mark_up()
    return web.json_response({"status": "ready", "database": "ok", "knowledge_entries": len(runtime.knowledge.kb),
                              "knowledge_version": runtime.knowledge.version})


async def _backlog(runtime: Runtime) -> dict[tuple[str, str], int]:
    """Outbox rows not yet delivered, by channel and status (one grouped query per scrape)."""
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(_BACKLOG)
        return {(channel, status): count for channel, status, count in rows}


_OUTBOX = Outbox.__table__
_BACKLOG = (select(_OUTBOX.c.channel, _OUTBOX.c.status, func.count())
            .where(_OUTBOX.c.status.in_(("pending", "sending", "held")))
            .group_by(_OUTBOX.c.channel, _OUTBOX.c.status))


def _scraper_address(request: web.Request, trusted: tuple[Any, ...]) -> IPv4Address | IPv6Address | None:
    """Who asks for ``/metrics``. A request forwarded by a proxy we do not trust (nginx on this
    host without QIBOT_TRUSTED_PROXIES) has an unknown client: None, never the proxy's loopback."""
    forwarded = any(h in request.headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP"))
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)
    if address is None or (forwarded and address == request.remote):
        return None
    try:
        return ip_address(address)
    except ValueError:  # a Unix socket peer
        return None


def metrics_handler(settings: Settings) -> Handler:
    """``/metrics`` for Prometheus: only from the allowed addresses (default: this machine), or
    with the bearer token when one is set. The address is the connecting one, or the client's
    from ``X-Forwarded-For`` of a trusted proxy, so nginx on the same host does not make every
    visitor "local"."""
    allowed = parse_networks(settings.metrics_allow)
    trusted = parse_networks(settings.trusted_proxies)
    expected = f"Bearer {settings.metrics_token}".encode() if settings.metrics_token else None

    async def handle(request: web.Request) -> web.StreamResponse:
        address = _scraper_address(request, trusted)
        given = request.headers.get("Authorization", "").encode()
        by_token = expected is not None and hmac.compare_digest(given, expected)
        by_address = address is not None and any(address.version == n.version and address in n for n in allowed)
        if not (by_token or by_address):
            return web.json_response({"error": "forbidden"}, status=403)
        try:
            backlog = await _backlog(request.app[RUNTIME])
        except Exception as exc:  # the process's metrics are still worth reading when the database is down
            if not is_unavailable(exc):
                raise
            OUTAGE.mark_down(exc)
            backlog = {}
        body = await asyncio.to_thread(metrics.exposition, backlog)  # reads the worker files in multiprocess mode
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle


def create_app(settings: Settings, runtime: Runtime | None = None, *,
               preloaded: tuple[NluPort, KnowledgeService] | None = None) -> web.Application:
    """Build the application. With ``runtime`` given (tests, another "worker" on the same
    runtime), the caller owns its lifetime, and the channels mounted here register their
    notifiers with its dispatcher while the app runs; otherwise the app starts and closes its own
    runtime, which registers them. ``preloaded``: an NLU and a knowledge base already loaded
    (a worker forked by ``qibot serve --workers N`` shares its parent's), used by that runtime."""
    app = web.Application(middlewares=[observe, edge.bounded_paths, error_middleware],
                          client_max_size=settings.max_body_bytes)
    app.on_response_prepare.append(edge.security_headers(settings.public_url))
    install_client_error_filter()  # aiohttp's unparsable-request tracebacks become one line
    app[SETTINGS] = settings
    channels = registry.configured(settings)

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        if runtime is not None:
            app[RUNTIME] = runtime
            await runtime.events.start()
            deps = runtime.channel_deps(settings)
            app[CHANNEL_DEPS] = deps
            async with AsyncExitStack() as stack:
                for channel in channels:
                    await stack.enter_async_context(channel.lifetime(deps))
                    for notifier in channel.notifiers(deps):
                        runtime.dispatcher.register(notifier)
                yield
            return
        nlu, knowledge = preloaded if preloaded is not None else (None, None)
        own = await Runtime.start(settings, channels=channels, nlu=nlu, knowledge=knowledge)
        await own.events.start()
        app[RUNTIME] = own
        app[CHANNEL_DEPS] = own.channel_deps()
        dispatching = asyncio.create_task(own.dispatcher.run_forever(), name="outbox-dispatcher")
        jobs = asyncio.create_task(run_jobs_forever(own), name="service-jobs")
        yield
        # After the requests in flight (aiohttp waited for them): deliveries finish or give
        # their claims back, so another worker takes them at once.
        jobs.cancel()
        await own.dispatcher.close()
        await asyncio.gather(dispatching, jobs, return_exceptions=True)
        await own.close()

    app.cleanup_ctx.append(runtime_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler(settings))
    for channel in channels:
        channel.setup(app, CHANNEL_DEPS)
    setup_console(app, CHANNEL_DEPS)
    return app
