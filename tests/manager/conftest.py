"""The manager's services and pages, on every database the service supports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.policy import ServicePolicy
from tests.helpers.managed import open_sessions


@pytest.fixture(scope="session")
def policy() -> ServicePolicy:
    return ServicePolicy()


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async for found in open_sessions(database_url):
        yield found
