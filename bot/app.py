"""The aiohttp application factory: composes channels, health checks and error handling.

Shared objects live under typed ``web.AppKey``s; the runtime is opened and closed in a
``cleanup_ctx`` generator, so tests and ``qibot serve`` build the app the same way. Every enabled
channel of :mod:`bot.channels.registry` is mounted; channels read their dependencies from
``app[CHANNEL_DEPS]`` once the app has started.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

from aiohttp import WSCloseCode, web

from bot.channels import edge, registry
from bot.channels.base import ChannelDeps
from bot.config import Settings
from bot.console.manager import setup_manager_routes
from bot.jobs import run_jobs_forever
from bot.privacy import install_client_error_filter
from bot.runtime import Runtime
from bot.storage import db

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
RUNTIME = web.AppKey("runtime", Runtime)
CHANNEL_DEPS = web.AppKey("channel_deps", ChannelDeps)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if (ws := edge.upgraded(request)) is not None:
            await ws.close(code=WSCloseCode.INTERNAL_ERROR)
            return ws
        return web.json_response({"error": "internal error"}, status=500)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        await db.ping(runtime.engine)
    except Exception as exc:  # the database is down or unreachable
        log.warning("readiness check failed: %s", type(exc).__name__)
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ready", "database": "ok", "knowledge_entries": len(runtime.knowledge.kb)})


def create_app(settings: Settings, runtime: Runtime | None = None) -> web.Application:
    """Build the application. With ``runtime`` given (tests, another "worker" on the same
    runtime), the caller owns its lifetime, and the channels mounted here register their
    notifiers with its dispatcher while the app runs; otherwise the app starts and closes its own
    runtime, which registers them."""
    app = web.Application(middlewares=[edge.bounded_paths, error_middleware], client_max_size=settings.max_body_bytes)
    app.on_response_prepare.append(edge.security_headers(settings.public_url))
    install_client_error_filter()  # aiohttp's unparsable-request tracebacks become one line
    app[SETTINGS] = settings
    channels = registry.configured(settings)

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        if runtime is not None:
            app[RUNTIME] = runtime
            deps = runtime.channel_deps(settings)
            app[CHANNEL_DEPS] = deps
            async with AsyncExitStack() as stack:
                for channel in channels:
                    await stack.enter_async_context(channel.lifetime(deps))
                    for notifier in channel.notifiers(deps):
                        runtime.dispatcher.register(notifier)
                yield
            return
        own = await Runtime.start(settings, channels=channels)
        app[RUNTIME] = own
        app[CHANNEL_DEPS] = own.channel_deps()
        tasks = [
            asyncio.create_task(own.dispatcher.run_forever(), name="outbox-dispatcher"),
            asyncio.create_task(run_jobs_forever(own), name="service-jobs"),
        ]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await own.close()

    app.cleanup_ctx.append(runtime_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    for channel in channels:
        channel.setup(app, CHANNEL_DEPS)
    setup_manager_routes(app, CHANNEL_DEPS)
    return app
