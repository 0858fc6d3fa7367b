"""Page rendering: Jinja2 through aiohttp-jinja2, with the templates and static files shipped in
the package (``bot/console/templates``, ``bot/console/static``; nothing fetched at run time).

Every template gets ``staff`` (the :class:`~bot.console.auth.StaffPrincipal`, or None on the
sign-in page) and ``csrf`` (the form token) from the context processor, and the filters
``bj`` (a UTC moment as Beijing time with the date) and ``mask`` (:func:`bot.privacy.redact`).
Pages use no inline script or style: the app's Content-Security-Policy forbids both.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.console.auth import PRINCIPAL, csrf_token
from bot.console.context import CONSOLE
from bot.privacy import redact

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


class _CompiledTemplates(jinja2.BytecodeCache):
    """Compiled templates kept for the life of the process, shared by every app it builds (a
    test's, a second app in one process): compiling costs ~6 ms per template and every new
    environment would pay it again at each template's first use. Keyed by Jinja on the
    template's name and source checksum, so an edited template is compiled afresh."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._compiled.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


async def _context(request: web.Request) -> dict[str, Any]:
    return {"staff": request.get(PRINCIPAL), "csrf": csrf_token(request)}


def setup(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=jinja2.select_autoescape(["html"]),
        context_processors=[_context], undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        bytecode_cache=_COMPILED,
    )
    env.filters["mask"] = lambda text: redact(str(text)) if text else ""

    def beijing(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if moment is None:
            return "-"
        return moment.astimezone(app[CONSOLE].deps.policy.calendar.tz).strftime(fmt)

    env.filters["bj"] = beijing
    env.filters["actor"] = actor_name


def actor_name(actor: str) -> str:
    """A timeline actor as staff read it: ``commissioner:wang`` → ``专员 wang``."""
    if actor.startswith("commissioner:"):
        return "专员 " + actor.split(":", 1)[1]
    return {"enterprise": "企业", "system": "系统", "management": "管理机构"}.get(actor, actor)


def page(request: web.Request, name: str, values: dict[str, Any], status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(name, request, values, status=status)
    response.headers["Cache-Control"] = "no-store"  # pages carry case data: never kept by a cache
    return response


def error_page(request: web.Request, status: int, message: str) -> str:
    env = aiohttp_jinja2.get_env(request.app)
    return env.get_template("error.html").render(
        staff=request.get(PRINCIPAL), csrf=csrf_token(request), status=status, message=message)
