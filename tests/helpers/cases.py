"""Building cases, and reading back cases, commissioners and outbox rows as the service stores them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.runtime import Runtime
from bot.services import cases
from bot.storage.db import transaction
from bot.storage.models import Commissioner, Enterprise, Outbox, ServiceCase
from tests.helpers.clock import START


async def new_case(runtime: Runtime, domain: str, district: str | None, at: datetime = START) -> ServiceCase:
    """A case of a fresh enterprise (no chat identity), opened at ``at``."""
    async with transaction(runtime.sessions) as session:
        enterprise = Enterprise(name="厦门示例有限公司", district=district)
        session.add(enterprise)
        await session.flush()
        case = await cases.open_case(session, enterprise=enterprise, identity=None, domain=domain,
                                     description="测试需求", mode="online", district=district, now=at)
        return await cases.require_case(session, case.number)


async def load_case(runtime: Runtime, number: str) -> ServiceCase:
    async with transaction(runtime.sessions) as session:
        return await cases.require_case(session, number)


async def commissioner(runtime: Runtime, handle: str = "wang") -> Commissioner:
    async with transaction(runtime.sessions) as session:
        return (await session.execute(select(Commissioner).where(Commissioner.handle == handle))).scalar_one()


async def outbox_row(sessions: async_sessionmaker[AsyncSession], row_id: int) -> Outbox:
    """An outbox row as it is stored now (status, attempts, last error, next attempt)."""
    async with sessions() as session:
        found = await session.get(Outbox, row_id)
    assert found is not None
    return found
