"""The console's SQL on both databases: sign-in, the scope of a commissioner, the reveal audit,
and the triggers that keep the audit log append-only (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from bot.app import create_app
from bot.config import load_settings
from bot.services.demo import load_demo
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from intents.classifier import Nlu
from tests.console.test_console_access import MOBILE, siming_case
from tests.helpers.clock import Clock
from tests.helpers.console import add_accounts, csrf_of, sign_in
from tests.helpers.runtime import start_runtime


async def test_scope_reveal_and_append_only_audit(database_url: str, tmp_path: Path, nlu: Nlu,
                                                  knowledge: KnowledgeService) -> None:
    settings = load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path / "data"), "QIBOT_DATABASE_URL": database_url})
    runtime = await start_runtime(settings, nlu, knowledge, Clock())
    try:
        async with transaction(runtime.sessions) as session:
            await load_demo(session)
        await add_accounts(runtime)
        number = await siming_case(runtime)
        server = TestServer(create_app(settings, runtime))
        async with TestClient(server, cookie_jar=CookieJar(unsafe=True)) as wang, \
                TestClient(server, cookie_jar=CookieJar(unsafe=True)) as li:
            assert (await sign_in(wang, "wang")).status == 303
            assert (await sign_in(li, "li")).status == 303
            assert number in await (await wang.get("/console/")).text()
            assert number not in await (await li.get("/console/")).text()
            assert (await li.get(f"/console/cases/{number}")).status == 404
            page = await (await wang.get(f"/console/cases/{number}")).text()
            revealed = await wang.post(f"/console/cases/{number}/reveal",
                                       data={"field": "mobile", "csrf": csrf_of(page)})
            assert MOBILE in await revealed.text()
        for statement in ("UPDATE staff_audit SET detail = 'x'", "DELETE FROM staff_audit"):
            with pytest.raises(Exception, match="append-only"):
                async with transaction(runtime.sessions) as session:
                    await session.execute(text(statement))
    finally:
        await runtime.close()
