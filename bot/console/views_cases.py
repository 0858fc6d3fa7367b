"""``/console/cases/<number>``: the case page, its actions and the audited reveal of personal
data. Every action goes through :mod:`bot.services.staff_actions` (the same table the CLI,
Telegram and WeCom run), as the commissioner the account is linked to, after the console's own
check that the case is within the staff member's scope (:mod:`bot.console.scope`)."""

from __future__ import annotations

import re

from aiohttp import web

from bot.console import case_view
from bot.console.auth import StaffPrincipal, audit, check_csrf, context, forbidden, require_staff
from bot.console.render import page
from bot.console.scope import scope_of, visible_case
from bot.services import audit as audit_log
from bot.services import canned, materials, staff_actions
from bot.services.case_states import STATUS_ZH, event_name
from bot.services.cases import CaseError, domain_name, masked_enterprise
from bot.storage.db import transaction
from bot.storage.models import Commissioner

ACTIONS = ("accept", "reply", "note", "transfer", "resolve", "reopen", "end_live")
DONE = {"accept": "已受理。", "reply": "回复已发出。", "note": "备注已保存。", "transfer": "已转交。",
        "resolve": "已办结，已请企业评价。", "reopen": "已重新打开。", "end_live": "人工会话已结束。"}
MAX_TEXT = 4000
ID_RE = re.compile(r"[0-9]{1,9}")


def step(action: str, number: str) -> str:
    """A refusal's next step, as the console spells it (the button to press)."""
    names = {"accept": "受理", "reopen": "重新打开", "reply": "回复", "resolve": "办结"}
    return f"请先点击“{names.get(action, action)}”"


async def _form(request: web.Request) -> dict[str, str]:
    form = {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}
    await check_csrf(request, form)
    return form


def _number(request: web.Request) -> str:
    number = request.match_info["number"].strip().upper()
    if len(number) > 20:
        raise web.HTTPNotFound(text="没有这个案件", content_type="text/plain")
    return number


async def _render(request: web.Request, principal: StaffPrincipal, number: str, *, error: str = "",
                  revealed: frozenset[str] = frozenset(), status: int = 200) -> web.StreamResponse:
    ctx = context(request)
    async with transaction(ctx.deps.sessions) as session:
        scope = await scope_of(session, principal)
        case = await visible_case(session, scope, number)
        if case is None:
            raise web.HTTPNotFound(text=_not_found(request), content_type="text/html")
        view = await case_view.load(session, case, revealed)
        trail = await audit_log.recent(session, case_id=case.id, limit=50) \
            if principal.role in ("supervisor", "manager", "admin") else []
        fingerprint = await case_view.fingerprint(session, case.id)
        return page(request, "case.html", {
            "view": view, "case": case, "status_zh": STATUS_ZH, "domain_name": domain_name, "event_name": event_name,
            "masked": masked_enterprise, "canned": canned.load(ctx.deps.settings.data_dir), "error": error,
            "done": DONE.get(request.query.get("done", ""), ""), "can_act": principal.commissioner_id is not None,
            "me": scope.commissioner, "trail": trail, "revealable": case_view.REVEALABLE, "revealed": revealed,
            "fingerprint": fingerprint, "inline_types": materials.INLINE_TYPES,
        }, status=status)


def _not_found(request: web.Request) -> str:
    from bot.console.render import error_page

    return error_page(request, 404, "没有这个案件，或您无权查看。")


async def case_page(request: web.Request) -> web.StreamResponse:
    principal = await require_staff(request)
    return await _render(request, principal, _number(request))


async def act(request: web.Request) -> web.StreamResponse:
    principal = await require_staff(request)
    number = _number(request)
    form = await _form(request)
    name = form.get("action", "")
    if name not in ACTIONS:
        raise web.HTTPBadRequest(text="unknown action", content_type="text/plain")
    if principal.commissioner_id is None:
        raise forbidden(request, "您的账号未关联服务专员，只能查看，不能办理案件。")
    ctx = context(request)
    text = form.get("text", "").strip()
    if len(text) > MAX_TEXT:
        return await _render(request, principal, number, error=f"内容过长（最多 {MAX_TEXT} 字）", status=400)
    job = staff_actions.Request(number=number, text=text, to=form.get("to") or None)
    try:
        async with transaction(ctx.deps.sessions) as session:
            scope = await scope_of(session, principal)
            if await visible_case(session, scope, number) is None:
                raise web.HTTPNotFound(text=_not_found(request), content_type="text/html")
            me = await session.get(Commissioner, principal.commissioner_id)
            result = await staff_actions.run(session, me, name, job, ctx.deps.clock())
            case_id = result.case.id if result.case is not None else None
            detail = {"transfer": f"to {job.to}: {text}", "reply": text[:200], "note": text[:200],
                      "resolve": text[:200], "reopen": text[:200]}.get(name, "")
            await audit(session, principal, name, case_id, detail)
    except CaseError as exc:
        return await _render(request, principal, number, error=staff_actions.explain(exc, step), status=409)
    if result.notified:
        ctx.deps.wake()
    ctx.waker.wake()
    raise web.HTTPSeeOther(f"/console/cases/{number}?done={name}")


async def reveal(request: web.Request) -> web.StreamResponse:
    """Show one personal field in clear, on this response only; the reveal is audited."""
    principal = await require_staff(request)
    number = _number(request)
    form = await _form(request)
    field = form.get("field", "")
    if field not in case_view.REVEALABLE:
        raise web.HTTPBadRequest(text="unknown field", content_type="text/plain")
    ctx = context(request)
    async with transaction(ctx.deps.sessions) as session:
        case = await visible_case(session, await scope_of(session, principal), number)
        if case is None:
            raise web.HTTPNotFound(text=_not_found(request), content_type="text/html")
        await audit(session, principal, "reveal", case.id, f"revealed {field}")
    return await _render(request, principal, number, revealed=frozenset({field}))


async def material(request: web.Request) -> web.StreamResponse:
    """One image or file the enterprise sent: only within the staff member's scope (404 for a
    case outside it, another case's material, a bad id or one not fetched yet, all alike), the
    view audited, the type sniffed when stored (only raster images inline), never sniffed by the
    browser, and the bytes in a sandbox should anything open them."""
    principal = await require_staff(request)
    number = _number(request)
    raw = request.match_info["id"]
    if not ID_RE.fullmatch(raw):  # ASCII digits only: str.isdigit() also takes "１" and "²"
        raise web.HTTPNotFound(text=_not_found(request), content_type="text/html")
    ctx = context(request)
    async with transaction(ctx.deps.sessions) as session:
        case = await visible_case(session, await scope_of(session, principal), number)
        found = await materials.with_content(session, case.id, int(raw)) if case is not None else None
        if case is None or found is None or found.content is None:
            raise web.HTTPNotFound(text=_not_found(request), content_type="text/html")
        await audit(session, principal, "material_view", case.id, f"material {found.id} ({found.kind})")
        body, content_type, disposition = found.content, found.content_type, materials.content_disposition(found)
    return web.Response(body=body, headers={
        "Content-Type": content_type or "application/octet-stream",
        "Content-Disposition": disposition,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    })


def setup(app: web.Application) -> None:
    app.router.add_get("/console/cases/{number}", case_page)
    app.router.add_get("/console/cases/{number}/materials/{id}", material)
    app.router.add_post("/console/cases/{number}/act", act)
    app.router.add_post("/console/cases/{number}/reveal", reveal)
