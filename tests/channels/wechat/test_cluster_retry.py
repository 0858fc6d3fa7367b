"""WeChat retries on several workers (issue 16): two runtimes on one PostgreSQL, each with its own
app, its own map of running turns and its own dispatcher, as two ``qibot serve`` processes have.
Whichever worker a retry reaches, and whichever dispatcher delivers, the user gets one answer."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import create_app
from bot.config import Settings
from bot.runtime import Runtime
from bot.services.knowledge import KnowledgeService
from intents.classifier import Nlu
from tests.channels.wechat.wechat_helpers import EchoHandler, WeChatServers, put_first, settle
from tests.helpers.fakes.wechat_server import FakeWeChat


@pytest.fixture
async def two_workers(settings: Settings, postgres_url: str, nlu: Nlu,
                      knowledge: KnowledgeService) -> AsyncIterator[tuple[Runtime, Runtime]]:
    shared = dataclasses.replace(settings, database_url=postgres_url)
    first = await Runtime.start(shared, nlu=nlu, knowledge=knowledge)
    second = await Runtime.start(shared, nlu=nlu, knowledge=knowledge, migrate=False)
    yield first, second
    await first.close()
    await second.close()


async def test_a_retry_on_another_worker_process_gets_no_second_answer(
    two_workers: tuple[Runtime, Runtime], aiohttp_client: Any, fake: FakeWeChat
) -> None:
    first, second = two_workers
    for runtime in two_workers:
        put_first(runtime, EchoHandler(delay=0.6))
    impatient_settings = dataclasses.replace(first.settings, wechat_reply_budget=0.2)
    a = WeChatServers(await aiohttp_client(create_app(impatient_settings, first)), fake.app_id)
    b = WeChatServers(await aiohttp_client(create_app(second.settings, second)), fake.app_id)
    user = a.user()
    assert await a.say(user, "两个进程", "910001") is None  # over A's budget: "success", A will push
    replayed = await b.say(user, "两个进程", "910001")  # WeChat's retry lands on B
    await settle(first, a.client)
    # Both workers' dispatchers run: the push goes out once at most, and only if B did not replay.
    await asyncio.gather(first.dispatcher.run_once(), second.dispatcher.run_once())
    answers = ([replayed] if replayed else []) + fake.texts_to(user)
    assert answers == ["echo: 两个进程"]


async def test_simultaneous_retries_on_two_workers_run_the_turn_once(
    two_workers: tuple[Runtime, Runtime], aiohttp_client: Any, fake: FakeWeChat
) -> None:
    first, second = two_workers
    echoes = [EchoHandler(delay=0.2), EchoHandler(delay=0.2)]
    for runtime, echo in zip(two_workers, echoes, strict=True):
        put_first(runtime, echo)
    a = WeChatServers(await aiohttp_client(create_app(first.settings, first)), fake.app_id)
    b = WeChatServers(await aiohttp_client(create_app(second.settings, second)), fake.app_id)
    user = a.user()
    answers = await asyncio.gather(a.say(user, "同时到达", "920001"), b.say(user, "同时到达", "920001"))
    await asyncio.gather(first.dispatcher.run_once(), second.dispatcher.run_once())
    assert sum(e.calls for e in echoes) == 1  # one turn, on one worker
    # WeChat shows the answer to one of its requests: each passive answer is the same, and
    # nothing is pushed on top of a passive one.
    assert {x for x in answers if x} <= {"echo: 同时到达"}
    assert fake.texts_to(user) == ([] if any(answers) else ["echo: 同时到达"])
