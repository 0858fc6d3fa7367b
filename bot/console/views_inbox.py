"""``GET /console/``: the inbox (live through :mod:`bot.console.events`), and duty on/off."""

from __future__ import annotations

from aiohttp import web

from bot.console import inbox as inbox_data
from bot.console.auth import audit, check_csrf, context, forbidden, require_staff
from bot.console.render import page
from bot.console.scope import scope_of
from bot.services import staff_actions
from bot.services.case_states import STATUS_ZH
from bot.services.cases import domain_name, masked_enterprise
from bot.storage.db import transaction
from bot.storage.models import Commissioner


async def inbox_page(request: web.Request) -> web.StreamResponse:
    principal = await require_staff(request)
    ctx = context(request)
    async with transaction(ctx.deps.sessions) as session:
        scope = await scope_of(session, principal)
        box = await inbox_data.load(session, scope, ctx.deps.policy, ctx.deps.clock())
        on_duty = scope.commissioner.on_duty if scope.commissioner is not None else None
    return page(request, "inbox.html", {
        "box": box, "on_duty": on_duty, "status_zh": STATUS_ZH, "domain_name": domain_name,
        "masked": masked_enterprise, "fingerprint": box.fingerprint(),
    })


async def duty(request: web.Request) -> web.StreamResponse:
    principal = await require_staff(request)
    form = {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}
    await check_csrf(request, form)
    if principal.commissioner_id is None:
        raise forbidden(request, "您的账号未关联服务专员，没有值班状态。")
    ctx = context(request)
    on = form.get("on") == "1"
    async with transaction(ctx.deps.sessions) as session:
        me = await session.get(Commissioner, principal.commissioner_id)
        await staff_actions.run(session, me, "duty", staff_actions.Request(on=on), ctx.deps.clock())
        await audit(session, principal, "duty", None, "on" if on else "off")
    ctx.waker.wake()
    raise web.HTTPSeeOther("/console/")


def setup(app: web.Application) -> None:
    app.router.add_get("/console/", inbox_page)
    app.router.add_get("/console", to_inbox)
    app.router.add_post("/console/duty", duty)


async def to_inbox(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")
