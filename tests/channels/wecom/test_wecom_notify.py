"""Notifications over WeCom: app messages with the case summary and console link (token cached,
refreshed when WeCom rejects it), and the team robot, which queues rather than drops."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.channels.wecom.api import clip_bytes
from bot.runtime import Runtime
from bot.services import outbox
from bot.storage.db import transaction
from bot.storage.models import Outbox
from tests.channels.wecom.wecom_helpers import (
    AES_KEY,
    MOBILE,
    PUBLIC_URL,
    ROBOT_KEY,
    SECRET,
    add_commissioner,
    new_case,
)
from tests.helpers.clock import OffsetClock
from tests.helpers.fakes.wecom_server import FakeWeCom


async def rows(runtime: Runtime, channel: str) -> list[Outbox]:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(select(Outbox).where(Outbox.channel == channel))).scalars())


async def test_a_new_case_reaches_the_commissioner_and_the_team(runtime: Runtime, client: TestClient,
                                                                fake: FakeWeCom) -> None:
    await add_commissioner(runtime)
    number = await new_case(runtime)
    assert (await runtime.dispatcher.run_once()).sent >= 1
    [message] = fake.messages
    assert message["touser"] == "wangming" and message["msgtype"] == "text" and message["agentid"] == 1
    assert message["enable_duplicate_check"] == 1 and message["duplicate_check_interval"] > 0
    content = message["text"]["content"]
    assert number in content and f"{PUBLIC_URL}/console/cases/{number}" in content
    assert f"认领 {number}" in content and "qibot case" not in content
    assert MOBILE not in content and "厦门****公司" in content
    await runtime.dispatcher.run_once()  # the team post the app notifier queued
    [post] = fake.robot_posts
    assert number in post["text"]["content"] and "认领" not in post["text"]["content"]


async def test_an_expired_token_is_refreshed_and_the_message_sent_once(runtime: Runtime, client: TestClient,
                                                                      fake: FakeWeCom) -> None:
    await add_commissioner(runtime)
    await new_case(runtime)
    await runtime.dispatcher.run_once()
    assert fake.token_fetches == 1 and len(fake.messages) == 1
    fake.expire_token()
    await new_case(runtime, "ent-2")
    stats = await runtime.dispatcher.run_once()
    assert stats.retried == 0
    assert fake.errors.count(42001) == 1 and fake.token_fetches == 2 and len(fake.messages) == 2


async def test_an_unknown_user_is_retried_not_dropped(runtime: Runtime, client: TestClient, fake: FakeWeCom) -> None:
    await add_commissioner(runtime, wecom_user_id="ghost")
    await new_case(runtime)
    assert (await runtime.dispatcher.run_once()).retried == 1
    [row] = await rows(runtime, "wecom")
    assert row.status == "pending" and "81013" in (row.last_error or "")


async def test_the_robot_queues_beyond_its_rate_instead_of_dropping(runtime: Runtime, client: TestClient,
                                                                   fake: FakeWeCom) -> None:
    clock = OffsetClock()
    runtime.dispatcher.clock = clock.wall
    bucket = runtime.dispatcher.notifiers["wecom_robot"].bucket  # the app's channel registered it
    bucket.clock, bucket._at = clock.mono, clock.mono()
    async with transaction(runtime.sessions) as session:
        for i in range(25):
            await outbox.enqueue(session, channel="wecom_robot", recipient="team", kind="case_assigned",
                                 payload={"text": f"【新需求】第 {i} 件"}, now=datetime.now(UTC))
    first = await runtime.dispatcher.run_once()
    assert (first.sent, first.retried) == (20, 5) and len(fake.robot_posts) == 20
    assert 45009 not in fake.errors  # we stopped ourselves before WeCom had to
    for _ in range(12):
        if len(fake.robot_posts) == 25:
            break
        clock.advance(seconds=30)  # bucket refills ~10 posts; retries come due
        fake._robot_times.clear()  # the fake counts real seconds; our bucket runs on the test clock
        await runtime.dispatcher.run_once()
    assert sorted(p["text"]["content"] for p in fake.robot_posts) == sorted(f"【新需求】第 {i} 件" for i in range(25))
    assert {r.status for r in await rows(runtime, "wecom_robot")} == {"sent"}


def test_texts_are_cut_on_a_character_boundary() -> None:
    text = "质" * 1000  # 3000 bytes
    cut = clip_bytes(text)
    assert len(cut.encode()) <= 2048 and cut.endswith("…") and set(cut[:-1]) == {"质"}
    assert clip_bytes("short") == "short"
    assert len(clip_bytes("a" * 5000).encode()) == 2048


async def test_long_robot_posts_are_truncated_not_refused(runtime: Runtime, client: TestClient,
                                                          fake: FakeWeCom) -> None:
    async with transaction(runtime.sessions) as session:
        await outbox.enqueue(session, channel="wecom_robot", recipient="team", kind="case_assigned",
                             payload={"text": "【超长】" + "检" * 2000}, now=datetime.now(UTC))
    assert (await runtime.dispatcher.run_once()).sent == 1
    assert len(fake.robot_posts[0]["text"]["content"].encode()) <= 2048


async def test_secrets_never_reach_the_log(runtime: Runtime, client: TestClient, fake: FakeWeCom,
                                           caplog: Any) -> None:
    caplog.set_level("DEBUG")
    await add_commissioner(runtime)
    await new_case(runtime)
    fake.expire_token()
    await runtime.dispatcher.run_once()
    await runtime.dispatcher.run_once()
    fake.robot_key = "rotated"  # our key is now wrong: the error must not quote the URL
    async with transaction(runtime.sessions) as session:
        await outbox.enqueue(session, channel="wecom_robot", recipient="team", kind="x", payload={"text": "t"},
                             now=datetime.now(UTC))
    await runtime.dispatcher.run_once()
    # The fake server's own access log prints the URLs it received: that is WeCom's side, not ours.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    for secret in (SECRET, ROBOT_KEY, AES_KEY, "token-1", "token-2"):
        assert secret not in ours
    assert [r.last_error for r in await rows(runtime, "wecom_robot") if r.last_error] == [
        "NotifierUnavailable: WeCom errcode 93000: invalid webhook url"]
