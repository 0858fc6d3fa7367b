"""Reading cases and commissioners back in the commissioner-channel tests (Telegram, WeCom)."""

from __future__ import annotations

from sqlalchemy import select

from bot.runtime import Runtime
from bot.services import cases
from bot.storage.db import transaction
from bot.storage.models import Commissioner, ServiceCase


async def load_case(runtime: Runtime, number: str) -> ServiceCase:
    async with transaction(runtime.sessions) as session:
        return await cases.require_case(session, number)


async def commissioner(runtime: Runtime, handle: str = "wang") -> Commissioner:
    async with transaction(runtime.sessions) as session:
        return (await session.execute(select(Commissioner).where(Commissioner.handle == handle))).scalar_one()
