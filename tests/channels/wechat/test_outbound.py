"""Pushes through the customer-service API against the fake WeChat server: the 48-hour and
5-per-message rules, 45015, token refresh, and one token for several workers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.channels.wechat.admin import create_menu
from bot.channels.wechat.api import WeChatApi, WeChatApiError
from bot.channels.wechat.menu import default_menu
from bot.cli import main
from bot.config import Settings
from bot.runtime import Runtime
from bot.services import outbox
from bot.storage import db
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, Outbox
from bot.storage.types import utcnow
from tests.channels.wechat.wechat_helpers import WeChatServers
from tests.helpers.fakes.wechat_server import CUSTOM_SEND, TOKEN, FakeWeChat


async def a_user(wechat: WeChatServers) -> str:
    """A follower who has just written (so the 48-hour window is open)."""
    user = wechat.user()
    assert await wechat.say(user, "你好")
    return user


async def notify(runtime: Runtime, openid: str, *texts: str, script: str | None = None) -> None:
    async with transaction(runtime.sessions) as session:
        identity = (
            await session.execute(select(ChannelIdentity).where(ChannelIdentity.external_id == openid))
        ).scalar_one()
        if script:
            identity.script = script
        for text in texts:
            await outbox.message_enterprise(session, identity, text, kind="progress", now=utcnow(), author="system")


async def statuses(runtime: Runtime) -> list[str]:
    async with transaction(runtime.sessions) as session:
        rows = await session.execute(select(Outbox.status).where(Outbox.channel == "wechat").order_by(Outbox.id))
        return list(rows.scalars())


async def last_wrote(runtime: Runtime, openid: str, ago: timedelta) -> None:
    async with transaction(runtime.sessions) as session:
        await session.execute(
            update(ChannelIdentity).where(ChannelIdentity.external_id == openid).values(last_inbound_at=utcnow() - ago)
        )


async def test_a_push_is_delivered_in_the_users_script(wechat: WeChatServers, runtime: Runtime,
                                                       fake: FakeWeChat) -> None:
    user = await a_user(wechat)
    await notify(runtime, user, "您的需求已受理，服务专员将尽快联系您。", script="hant")
    stats = await runtime.dispatcher.run_once()
    assert stats.sent == 1
    assert fake.texts_to(user) == ["您的需求已受理，服務專員將盡快聯繫您。"]  # OpenCC s2tw


async def test_engine_answers_are_not_converted_twice(wechat: WeChatServers, runtime: Runtime,
                                                      fake: FakeWeChat) -> None:
    user = await a_user(wechat)
    async with transaction(runtime.sessions) as session:
        await outbox.enqueue(session, channel="wechat", recipient=user, kind="reply", now=utcnow(),
                             payload={"text": "了解", "script": "hant", "rendered": True})
    await runtime.dispatcher.run_once()
    assert fake.texts_to(user) == ["了解"]  # OpenCC would turn an already-Traditional 了 into 瞭


@pytest.mark.parametrize(
    ("ago", "expected"), [(timedelta(hours=47, minutes=59), "sent"), (timedelta(hours=48), "held")]
)
async def test_the_48_hour_window(wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat, ago: timedelta,
                                  expected: str) -> None:
    user = await a_user(wechat)
    await last_wrote(runtime, user, ago)
    await notify(runtime, user, "进度更新")
    await runtime.dispatcher.run_once()
    assert await statuses(runtime) == [expected]
    assert fake.texts_to(user) == (["进度更新"] if expected == "sent" else [])


async def test_a_held_message_is_handed_over_at_the_next_message(wechat: WeChatServers, runtime: Runtime,
                                                                 fake: FakeWeChat) -> None:
    user = await a_user(wechat)
    await last_wrote(runtime, user, timedelta(days=3))
    await notify(runtime, user, "您的需求 QI-2026-000001 已办结")
    await runtime.dispatcher.run_once()
    reply = await wechat.say(user, "你好")
    assert reply is not None and reply.startswith("您的需求 QI-2026-000001 已办结")
    assert await statuses(runtime) == ["sent"] and fake.sent == []


async def test_at_most_five_pushes_per_user_message(wechat: WeChatServers, runtime: Runtime,
                                                    fake: FakeWeChat) -> None:
    user = await a_user(wechat)
    await notify(runtime, user, *(f"通知{i}" for i in range(1, 8)))
    await runtime.dispatcher.run_once()
    assert fake.texts_to(user) == [f"通知{i}" for i in range(1, 6)]
    assert await statuses(runtime) == ["sent"] * 5 + ["held"] * 2
    reply = await wechat.say(user, "谢谢")  # the user writes: the two held ones come with the answer
    assert reply is not None and reply.startswith("通知6\n\n通知7")
    await notify(runtime, user, "通知8")  # and the allowance starts again
    await runtime.dispatcher.run_once()
    assert fake.texts_to(user)[-1] == "通知8"


@pytest.mark.parametrize("code", [45015, 45047])
async def test_45015_holds_the_message_until_the_user_writes(wechat: WeChatServers, runtime: Runtime,
                                                             fake: FakeWeChat, code: int) -> None:
    user = await a_user(wechat)
    fake.fail(CUSTOM_SEND, code)
    await notify(runtime, user, "请对本次服务评价")
    stats = await runtime.dispatcher.run_once()
    assert stats.held == 1 and fake.sent == []
    await notify(runtime, user, "第二条")  # the allowance is spent until the user writes
    await runtime.dispatcher.run_once()
    assert await statuses(runtime) == ["held", "held"]
    reply = await wechat.say(user, "好的")
    assert reply is not None and reply.startswith("请对本次服务评价\n\n第二条")


@pytest.mark.parametrize("code", [40001, 42001])
async def test_a_rejected_token_is_refreshed_and_the_push_retried_once(
    wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat, code: int
) -> None:
    user = await a_user(wechat)
    await notify(runtime, user, "第一条")
    await runtime.dispatcher.run_once()
    (fake.revoke_tokens if code == 40001 else fake.expire_tokens)()
    await notify(runtime, user, "第二条")
    stats = await runtime.dispatcher.run_once()
    assert stats.sent == 1 and fake.texts_to(user) == ["第一条", "第二条"]
    assert fake.token_fetches == 2


async def test_a_server_error_is_retried_later(wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat) -> None:
    user = await a_user(wechat)
    fake.fail(CUSTOM_SEND, 500)
    await notify(runtime, user, "稍后重试")
    stats = await runtime.dispatcher.run_once()
    assert stats.retried == 1
    async with transaction(runtime.sessions) as session:
        row = (await session.execute(select(Outbox).where(Outbox.channel == "wechat"))).scalar_one()
    assert row.status == "pending" and row.attempts == 1 and "HTTP 500" in (row.last_error or "")
    assert "ACCESS_TOKEN" not in (row.last_error or "")


async def test_other_errors_are_not_swallowed(wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat) -> None:
    user = await a_user(wechat)
    fake.fail(CUSTOM_SEND, 40003)
    await notify(runtime, user, "x")
    assert (await runtime.dispatcher.run_once()).retried == 1


# --- one token for every worker -----------------------------------------------------------------


def _worker(settings: Settings) -> tuple[Any, WeChatApi]:
    engine = db.create_engine(settings.effective_database_url)
    return engine, WeChatApi(settings.wechat_api_base_url, settings.wechat_app_id, settings.wechat_app_secret,
                             db.session_factory(engine))


async def test_two_workers_share_one_token(runtime: Runtime, fake: FakeWeChat) -> None:
    """Two API clients with their own database engines (as two processes would have) on one
    database: concurrent first use fetches one token, and a token WeChat rejects is replaced
    once, not once per worker."""
    fake.token_delay = 0.2  # both workers are inside the refresh at the same time
    (engine_a, a), (engine_b, b) = _worker(runtime.settings), _worker(runtime.settings)
    try:
        tokens = await asyncio.gather(*(api.tokens.get() for api in (a, b, a, b)))
        assert fake.token_fetches == 1 and len(set(tokens)) == 1
        fake.revoke_tokens()
        await asyncio.gather(a.send_text("oUser", "一"), b.send_text("oUser", "二"))
        assert fake.token_fetches == 2
        assert await a.tokens.get() == await b.tokens.get() == "ACCESS_TOKEN_2"
    finally:
        for api, engine in ((a, engine_a), (b, engine_b)):
            await api.close()
            await engine.dispose()


async def test_the_token_is_refreshed_before_it_expires(runtime: Runtime, fake: FakeWeChat) -> None:
    now = [utcnow()]
    api = WeChatApi(runtime.settings.wechat_api_base_url, fake.app_id, fake.app_secret, runtime.sessions,
                    clock=lambda: now[0])
    try:
        assert await api.tokens.get() == "ACCESS_TOKEN_1"
        now[0] += timedelta(seconds=7200 - 400)
        assert await api.tokens.get() == "ACCESS_TOKEN_1"
        now[0] += timedelta(seconds=200)  # inside the last 5 minutes
        assert await api.tokens.get() == "ACCESS_TOKEN_2"
    finally:
        await api.close()


async def test_a_wrong_secret_is_an_error_not_a_loop(runtime: Runtime, fake: FakeWeChat) -> None:
    api = WeChatApi(runtime.settings.wechat_api_base_url, fake.app_id, "wrong", runtime.sessions)
    try:
        with pytest.raises(WeChatApiError) as error:
            await api.send_text("oUser", "x")
        assert error.value.errcode == 40125 and "wrong" not in str(error.value)
        assert [c.path for c in fake.calls] == [TOKEN]
    finally:
        await api.close()


# --- the menu ---------------------------------------------------------------------------------


async def test_the_menu_is_created_from_the_data_file(settings: Settings, fake: FakeWeChat) -> None:
    sent = await create_menu(settings)
    assert fake.menus == [sent] == [default_menu().definition]


def test_the_menu_command_needs_the_app_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("QIBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QIBOT_WECHAT_TOKEN", "abc123")
    assert main(["wechat", "menu"]) == 2
    assert "QIBOT_WECHAT_APP_ID" in capsys.readouterr().err


async def test_token_sharing_and_claims_on_postgresql(postgres_url: str, fake_server: Any, fake: FakeWeChat) -> None:
    """The same guarantees on PostgreSQL, where workers really write concurrently."""
    from bot.channels.wechat import store

    await db.upgrade(postgres_url)
    base = str(fake_server.make_url("")).rstrip("/")
    engines = [db.create_engine(postgres_url) for _ in range(2)]
    apis = [WeChatApi(base, fake.app_id, fake.app_secret, db.session_factory(e)) for e in engines]
    fake.token_delay = 0.2
    try:
        tokens = await asyncio.gather(*(api.tokens.get() for api in apis * 3))
        assert fake.token_fetches == 1 and set(tokens) == {"ACCESS_TOKEN_1"}
        sessions = db.session_factory(engines[0])

        async def claim(how: str) -> str:
            async with transaction(sessions) as session:
                return await store.claim(session, "oUser|1", how, utcnow())

        assert set(await asyncio.gather(claim("push"), claim("passive"))) in ({"push"}, {"passive"})
        async with transaction(sessions) as session:
            session.add(ChannelIdentity(channel="wechat", external_id="oUser", created_at=utcnow()))
        async with transaction(sessions) as session:
            identity_id = (await session.execute(select(ChannelIdentity.id))).scalar_one()
        opened = utcnow()

        async def reserve() -> bool:
            async with transaction(db.session_factory(engines[1])) as session:
                return await store.reserve(session, identity_id, opened, 1)

        assert sorted(await asyncio.gather(*(reserve() for _ in range(8)))) == [False] * 3 + [True] * 5
    finally:
        for api, engine in zip(apis, engines, strict=True):
            await api.close()
            await engine.dispose()
