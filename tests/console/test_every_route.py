"""Every console route, as the app's router lists it (so a route added later is covered without
anyone remembering to): an anonymous visitor is sent to sign in or refused, and a signed-in
commissioner's form without its CSRF token is refused; never a page, never a 5xx."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.helpers.console import sign_in

Client = Any
# Pages anyone may open: the sign-in form, its static files and the one-time link's landing page.
PUBLIC = re.compile(r"^/console/(login(/link/\{token\})?|static|manage/static/\{name\})$")
SAMPLE = {"number": "QI-2026-000001", "id": "1", "entry_id": "metrology.market-scales", "fmt": "csv",
          "name": "manager.css", "token": "x" * 43}


def console_routes(app: web.Application) -> list[tuple[str, str, str]]:
    """(method, template, a concrete path) for every console route but the public ones."""
    found = []
    for resource in app.router.resources():
        info = resource.get_info()
        template = info.get("path") or info.get("formatter") or info.get("prefix") or ""
        if not template.startswith("/console") or PUBLIC.match(template):
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], template)
        found += [(route.method, template, path) for route in resource if route.method in ("GET", "POST")]
    return found


async def test_every_console_route_needs_a_signed_in_staff_member_and_a_form_token(
    new_client: Callable[[], Awaitable[Client]],
) -> None:
    anonymous = await new_client()
    routes = console_routes(anonymous.server.app)
    templates = {template for _, template, _ in routes}
    assert {"/console/cases/{number}/materials/{id}", "/console/knowledge/edit", "/console/manage/commissioners",
            "/console/manage/report.xlsx", "/console/events"} <= templates  # the router really was read
    for method, template, path in routes:
        response = await anonymous.request(method, path, allow_redirects=False, data={"note": "x"})
        assert response.status < 500, (method, template, response.status)
        if response.status in (302, 303):
            target = response.headers["Location"]
            assert target.startswith("/console/login") or (template, target) == ("/console", "/console/"), \
                (method, template, target)
        else:
            assert response.status in (401, 403, 404), (method, template, response.status)

    staff = await new_client()
    assert (await sign_in(staff, "wang")).status == 303
    for method, template, path in routes:
        if method != "POST" or template == "/console/logout":
            continue
        response = await staff.post(path, data={"note": "x", "text": "x"}, allow_redirects=False,
                                    headers={"Origin": str(staff.make_url("")).rstrip("/")})
        assert response.status in (400, 403, 404), (template, response.status)  # no token: nothing done
