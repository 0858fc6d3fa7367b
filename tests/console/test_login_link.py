"""Sign-in by a one-time link sent to the commissioner's linked Telegram: only its hash stored,
short-lived, single use, and no answer that tells which logins exist."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from yarl import URL

from bot.config import Settings, load_settings
from bot.runtime import Runtime
from bot.storage.db import transaction
from bot.storage.models import Commissioner, Outbox
from bot.storage.staff import StaffLoginLink
from tests.helpers.clock import Clock
from tests.helpers.console import form_token

Client = Any


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path / "data"),
                                  "QIBOT_PUBLIC_URL": "https://qibot.example"})


async def ask_for_link(client: Client, login: str) -> str:
    token = await form_token(client, "/console/login?b=1")
    response = await client.post("/console/login/link", data={"login": login, "csrf": token})
    assert response.status == 200
    return await response.text()


async def links(runtime: Runtime) -> list[str]:
    async with transaction(runtime.sessions) as session:
        rows = (await session.execute(select(Outbox).where(Outbox.kind == "console_login_link"))).scalars().all()
    assert all((r.channel, r.recipient) == ("telegram", "4242") for r in rows)
    return [re.search(r"/console/login/link/[A-Za-z]+", r.payload["text"]).group(0) for r in rows]  # type: ignore[union-attr]


async def test_a_one_time_link_signs_in_once_and_only_while_fresh(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]], clock: Clock
) -> None:
    async with transaction(console_runtime.sessions) as session:
        wang = (await session.execute(select(Commissioner).where(Commissioner.handle == "wang"))).scalar_one()
        wang.telegram_chat_id = "4242"
    asker = await new_client()
    sent = await ask_for_link(asker, "wang")
    nobody = await ask_for_link(await new_client(), "nobody")
    boss = await ask_for_link(await new_client(), "boss")  # no messenger: nothing is sent
    notice = "如果该账号已关联 Telegram 或企业微信，一次性登录链接已发送"
    assert notice in sent and notice in nobody and notice in boss
    [path] = await links(console_runtime)
    async with transaction(console_runtime.sessions) as session:
        stored = (await session.execute(select(StaffLoginLink.token_hash))).scalars().all()
    assert path.rsplit("/", 1)[1] not in stored  # only the hash

    phone = await new_client()
    preview = await phone.get(path)  # what a messenger's preview fetches: it must not use the link
    assert preview.status == 200
    token = await form_token(phone, path)
    signed = await phone.post(path, data={"csrf": token}, allow_redirects=False)
    assert signed.status == 303 and signed.headers["Location"] == "/console/"
    assert "Wang" in await (await phone.get("/console/")).text()

    again = await new_client()
    reused = await again.post(path, data={"csrf": await form_token(again, path)})
    assert reused.status == 401 and "已使用" in await reused.text()

    await ask_for_link(asker, "wang")
    fresh = (await links(console_runtime))[-1]
    clock.advance(minutes=11)
    late = await new_client()
    expired = await late.post(fresh, data={"csrf": await form_token(late, fresh)})
    assert expired.status == 401
    assert URL(str(expired.url)).path == fresh
