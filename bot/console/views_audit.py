"""``GET /console/audit``: the staff audit log, read-only, for supervisors, managers and
administrators (nobody can edit it: there is no route, and the database refuses changes)."""

from __future__ import annotations

from aiohttp import web

from bot.console.auth import context, require_staff
from bot.console.render import page
from bot.services import audit as audit_log
from bot.storage.db import transaction


async def audit_page(request: web.Request) -> web.StreamResponse:
    await require_staff(request, "manager", "admin")
    ctx = context(request)
    login = request.query.get("login", "").strip()[:40] or None
    async with transaction(ctx.deps.sessions) as session:
        rows = await audit_log.recent(session, login=login, limit=500)
    return page(request, "audit.html", {"rows": rows, "login": login or ""})


def setup(app: web.Application) -> None:
    app.router.add_get("/console/audit", audit_page)
