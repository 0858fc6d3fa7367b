"""Linking a Telegram chat to a commissioner with a one-time code — never by username."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.runtime import Runtime
from bot.services import linking
from bot.storage.db import transaction
from bot.storage.models import Commissioner
from tests.channels.telegram.telegram_helpers import TelegramUser, add_commissioner, commissioner
from tests.helpers.cli import invoke
from tests.helpers.fakes.telegram_server import FakeTelegram


async def issue(runtime: Runtime, handle: str = "wang", *, at: datetime | None = None) -> str:
    async with transaction(runtime.sessions) as session:
        me = (await session.execute(select(Commissioner).where(Commissioner.handle == handle))).scalar_one()
        return await linking.issue_code(session, me, at or datetime.now(UTC))


async def test_a_one_time_code_links_the_chat(runtime: Runtime, wang: TelegramUser) -> None:
    await add_commissioner(runtime)
    code = await issue(runtime)
    stored = await commissioner(runtime)
    assert stored.link_code_hash == linking.code_hash(code) and code not in stored.link_code_hash
    assert await wang.say(f"/start {code.lower()}") == 200
    assert "绑定成功：王明（wang）" in wang.inbox()[-1]
    linked = await commissioner(runtime)
    assert linked.telegram_chat_id == str(wang.chat_id)
    assert linked.link_code_hash is None  # spent


async def test_wrong_reused_and_expired_codes_are_refused(runtime: Runtime, wang: TelegramUser,
                                                          stranger: TelegramUser) -> None:
    await add_commissioner(runtime)
    await stranger.say("/link ABCDEFGHJK")
    assert "绑定码无效" in stranger.inbox()[-1]

    code = await issue(runtime)
    await wang.say(f"/link {code}")
    await stranger.say(f"/link {code}")  # the same code again, from someone who saw it
    assert "绑定码无效或已使用" in stranger.inbox()[-1]

    old = await issue(runtime, at=datetime.now(UTC) - timedelta(minutes=16))
    await stranger.say(f"/link {old}")
    assert "已过期" in stranger.inbox()[-1]
    assert (await commissioner(runtime)).telegram_chat_id == str(wang.chat_id)


async def test_a_username_is_no_proof_and_unlinked_chats_are_refused_politely(
    runtime: Runtime, stranger: TelegramUser
) -> None:
    await add_commissioner(runtime, handle="mallory", name="Mallory")
    for command in ("/mycases", "/case QI-2026-000001", "/duty off", "/start"):
        await stranger.say(command)
    assert len(stranger.inbox()) == 4
    assert all("请先获取绑定码" in text for text in stranger.inbox())
    assert (await commissioner(runtime, "mallory")).on_duty is True


async def test_linking_is_refused_in_a_group(runtime: Runtime, client: TestClient, fake: FakeTelegram) -> None:
    await add_commissioner(runtime)
    code = await issue(runtime)
    group = TelegramUser(client, fake, -100123, "team", chat_type="group")
    await group.say(f"/link {code}")
    assert "私聊" in group.inbox()[-1]
    assert (await commissioner(runtime)).telegram_chat_id is None


async def test_the_cli_prints_a_code_that_links(runtime: Runtime, wang: TelegramUser) -> None:
    await add_commissioner(runtime)
    result = invoke(["commissioner", "link-code", "wang"], runtime.settings.data_dir)
    assert result.returncode == 0, result.stderr
    code = re.search(r"/link ([0-9A-Z]{10})", result.stdout)
    assert code is not None and "15 分钟" in result.stdout
    assert (await commissioner(runtime)).link_code_hash == linking.code_hash(code.group(1))
    await wang.say(f"/link {code.group(1)}")
    assert (await commissioner(runtime)).telegram_chat_id == str(wang.chat_id)
