"""``GET /console/events``: server-sent events that tell an open page its data changed.

The stream re-reads the database every ``poll_seconds`` (2 s), or at once when a console action
in this process wakes it, and sends ``change`` with the new count when what the page shows
differs from what it was rendered with; the page then fetches itself again (``console.js``).
The database is the source of truth, so it works with several workers. The stream ends when the
session ends (``signout``), after ``MAX_SECONDS`` (the browser reconnects), or at shutdown.
"""

from __future__ import annotations

import json
from datetime import timedelta

from aiohttp import web

from bot.console import case_view, sessions
from bot.console import inbox as inbox_data
from bot.console.auth import context, require_staff
from bot.console.context import CONSOLE
from bot.console.scope import scope_of, visible_case
from bot.storage.db import transaction

MAX_SECONDS = 300.0
CLOSING = web.AppKey("console_closing", list)


async def stream(request: web.Request) -> web.StreamResponse:
    principal = await require_staff(request)
    ctx = context(request)
    number = request.query.get("case", "").strip().upper()[:20]
    seen = request.query.get("since", "")[:32]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    token = request.cookies.get(sessions.COOKIE)
    idle = timedelta(minutes=ctx.deps.settings.console_idle_minutes)
    elapsed = 0.0
    while elapsed < MAX_SECONDS and not request.app[CLOSING]:
        async with transaction(ctx.deps.sessions) as session:
            if not await sessions.alive(session, token, ctx.deps.clock(), idle):
                await response.write(b"event: signout\ndata: {}\n\n")
                break
            scope = await scope_of(session, principal)
            if number:
                case = await visible_case(session, scope, number)
                if case is None:
                    await response.write(b"event: gone\ndata: {}\n\n")
                    break
                current, count = await case_view.fingerprint(session, case.id), None
            else:
                box = await inbox_data.load(session, scope, ctx.deps.policy, ctx.deps.clock())
                current, count = box.fingerprint(), box.attention
        if current != seen:
            seen = current
            data = json.dumps({"fingerprint": current, "count": count})
            await response.write(f"event: change\ndata: {data}\n\n".encode())
        else:
            await response.write(b": keep-alive\n\n")
        await ctx.waker.wait(ctx.poll_seconds)
        elapsed += ctx.poll_seconds
    return response


async def _closing(app: web.Application) -> None:
    app[CLOSING].append(True)
    if CONSOLE in app:
        app[CONSOLE].waker.wake()


def setup(app: web.Application) -> None:
    app[CLOSING] = []
    app.router.add_get("/console/events", stream)
    app.on_shutdown.append(_closing)
