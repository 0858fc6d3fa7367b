"""The console on a runtime with the demo library and four staff accounts, served over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.config import Settings
from bot.runtime import Runtime
from bot.services.demo import load_demo
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from intents.classifier import Nlu
from tests.helpers.clock import Clock
from tests.helpers.console import add_accounts
from tests.helpers.runtime import start_runtime

Client = TestClient[Any, Any]


@pytest.fixture
async def console_runtime(settings: Settings, nlu: Nlu, knowledge: KnowledgeService, clock: Clock
                          ) -> AsyncIterator[Runtime]:
    runtime = await start_runtime(settings, nlu, knowledge, clock)
    async with transaction(runtime.sessions) as session:
        await load_demo(session)
    await add_accounts(runtime)
    yield runtime
    await runtime.close()


@pytest.fixture
async def new_client(console_runtime: Runtime, settings: Settings) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    """Browsers: each call is a new one (its own cookies) on the same server."""
    server = TestServer(create_app(settings, console_runtime))
    await server.start_server()
    clients: list[Client] = []

    async def make() -> Client:
        client = TestClient(server, cookie_jar=CookieJar(unsafe=True))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
    await server.close()
