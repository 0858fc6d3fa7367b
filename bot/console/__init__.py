"""The staff console: commissioners, supervisors, managers and administrators at work in the
browser, server-rendered in the same aiohttp app at ``/console/``.

``setup_console(app, deps)`` mounts it (``deps``: the app key of the
:class:`~bot.channels.base.ChannelDeps`, filled when the app starts), and, when importable, the
manager pages' ``bot.console.manager.setup_manager_routes(app, deps)``.

How pages are written (for every console module, the manager pages included):

* Templates are Jinja2 rendered with **aiohttp-jinja2**, set up once here (do not call
  ``aiohttp_jinja2.setup`` again): ``aiohttp_jinja2.render_template("manager/x.html", request,
  {...})`` or :func:`bot.console.render.page` (adds ``Cache-Control: no-store``). Templates live
  in ``bot/console/templates`` and ``{% extends "base.html" %}`` filling the blocks ``title`` and
  ``content`` (and optionally ``scripts``: extra ``<script src>`` tags). Every template gets
  ``staff`` (the :class:`~bot.console.auth.StaffPrincipal`) and ``csrf`` (the form token; put it in
  every form as ``<input type="hidden" name="csrf" value="{{ csrf }}">``), and the filters ``bj``
  (Beijing time with the date) and ``mask`` (identifiers masked).
* No inline script or style (the Content-Security-Policy forbids them): static files go in
  ``bot/console/static`` and are served at ``/console/static/…``.
* Every handler starts with ``principal = await require_staff(request, *roles)``; every POST
  calls ``await check_csrf(request, form)``; every action writes ``await audit(session,
  principal, action, case_id, detail)`` in its transaction (:mod:`bot.console.auth`).
"""

from __future__ import annotations

import importlib
import logging

from aiohttp import web

from bot.channels.base import ChannelDeps
from bot.console import events, render, views_audit, views_auth, views_cases, views_inbox, views_knowledge
from bot.console.context import CONSOLE, ConsoleContext

log = logging.getLogger(__name__)


async def _referrer_policy(request: web.Request, response: web.StreamResponse) -> None:
    """``same-origin`` instead of the site's ``no-referrer``: under ``no-referrer`` Chromium sends
    ``Origin: null`` with a form's POST, which the CSRF check must refuse as foreign; links to other
    sites still carry no referrer (case numbers in console URLs stay here)."""
    if request.path.startswith("/console"):
        response.headers["Referrer-Policy"] = "same-origin"


def setup_console(app: web.Application, deps: web.AppKey[ChannelDeps]) -> None:
    render.setup(app)

    async def started(app: web.Application) -> None:
        app[CONSOLE] = ConsoleContext(app[deps])

    app.on_startup.append(started)
    app.on_response_prepare.append(_referrer_policy)
    app.router.add_static("/console/static/", render.STATIC)
    for module in (views_auth, views_inbox, views_cases, views_audit, views_knowledge, events):
        module.setup(app)
    try:
        manager = importlib.import_module("bot.console.manager")
    except ModuleNotFoundError as exc:
        if exc.name != "bot.console.manager":
            raise
        return
    manager.setup_manager_routes(app, deps)
