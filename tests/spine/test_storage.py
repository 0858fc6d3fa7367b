"""The schema and the storage primitives, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.messages import InboundMessage
from bot.services import conversations, identities, message_log
from bot.services.conversations import DialogueState
from bot.storage import db
from bot.storage.models import Base, ChannelIdentity, MessageLog

EXPECTED_TABLES = {
    "enterprise", "channel_identity", "conversation_state", "message_log", "service_case", "case_event",
    "commissioner", "rating", "institution", "expert", "outbox", "site", "complaint", "kb_gap", "case_counter",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database the service supports, with nothing in it yet: these tests migrate it."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("empty_postgres_url"))


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await db.upgrade(database_url)
    engine = db.create_engine(database_url)
    yield db.session_factory(engine)
    await engine.dispose()


async def test_migrations_create_every_table_and_match_the_models(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        conn = await session.connection()
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert tables >= EXPECTED_TABLES
    assert set(Base.metadata.tables) <= tables


async def test_migrations_are_idempotent(database_url: str) -> None:
    await db.upgrade(database_url)
    await db.upgrade(database_url)  # a second `qibot db upgrade` is a no-op, not an error


async def test_a_redelivered_message_id_is_stored_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    now = datetime.now(UTC)
    message = InboundMessage(channel="wechat", user_id="openid-1", text="你好", message_id="6000000001")
    async with db.transaction(sessions) as session:
        identity, _ = await identities.touch(session, "wechat", "openid-1", now)
        first = await message_log.record_inbound(session, identity.id, message)
        second = await message_log.record_inbound(session, identity.id, message)
    assert first is not None
    assert second is None
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(MessageLog))
    assert count == 1


async def test_the_same_message_id_from_two_users_is_two_messages(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC)
    async with db.transaction(sessions) as session:
        for user in ("openid-a", "openid-b"):
            identity, _ = await identities.touch(session, "wechat", user, now)
            message = InboundMessage(channel="wechat", user_id=user, text="hi", message_id="42")
            assert await message_log.record_inbound(session, identity.id, message) is not None


async def test_conversation_state_round_trips_with_nested_data(sessions: async_sessionmaker[AsyncSession]) -> None:
    now = datetime.now(UTC)
    async with db.transaction(sessions) as session:
        identity, _ = await identities.touch(session, "webchat", "visitor", now)
        state = DialogueState()
        state.enter("intake", collected={"name": "厦门某某科技有限公司", "fields": ["mobile", "district"]})
        await conversations.save(session, identity.id, state, now)
        identity_id = identity.id
    async with db.transaction(sessions) as session:
        loaded = await conversations.load(session, identity_id)
        loaded.data["step"] = 2
        await conversations.save(session, identity_id, loaded, now)
    async with db.transaction(sessions) as session:
        again = await conversations.load(session, identity_id)
    assert again.flow == "intake"
    assert again.data == {
        "collected": {"name": "厦门某某科技有限公司", "fields": ["mobile", "district"]},
        "step": 2,
    }


async def test_timestamps_come_back_aware_and_in_utc(sessions: async_sessionmaker[AsyncSession]) -> None:
    local = datetime(2026, 11, 25, 20, 30, tzinfo=timezone(timedelta(hours=8)))
    async with db.transaction(sessions) as session:
        identity, _ = await identities.touch(session, "cli", "clock", local)
        identity_id = identity.id
    async with sessions() as session:
        identity = await session.get(ChannelIdentity, identity_id)
    assert identity is not None and identity.last_inbound_at is not None
    assert identity.last_inbound_at == local
    assert identity.last_inbound_at.utcoffset() == timedelta(0)


async def test_migration_0011_keeps_commissioners_and_cases_and_goes_back(database_url: str) -> None:
    """0011 on a database with data (SQLite rebuilds the commissioner table in batch mode): rows
    survive, the new columns read as 'no capacity, no extra districts', the inbox indexes and the
    partial index exist, and a downgrade to 0010 and back works on both databases."""
    import asyncio

    from alembic import command
    from sqlalchemy import text

    from bot.services import matching

    await db.upgrade(database_url, "0010")
    engine = db.create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO commissioner (handle, name, domains, on_duty, active, is_supervisor, "
                                    "satisfaction_sum, satisfaction_count, created_at) VALUES ('wang', '王明', "
                                    "'[\"metrology\"]', true, true, false, 0, 0, CURRENT_TIMESTAMP)"))
        await db.upgrade(database_url)
        async with engine.begin() as conn:
            indexes = await conn.run_sync(lambda c: {i["name"] for i in inspect(c).get_indexes("service_case")})
            columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("commissioner")})
        assert {"ix_service_case_status_created", "ix_service_case_owner_status", "ix_service_case_assignee_status",
                "ix_service_case_response_unstamped"} <= indexes
        assert {"districts", "max_open_cases", "status_reason"} <= columns
        sessions = db.session_factory(engine)
        async with sessions() as session:
            chosen = await matching.choose_commissioner(session, "metrology", "思明区")  # NULL columns read fine
        assert chosen is not None and chosen.handle == "wang" and chosen.max_open_cases is None
        await asyncio.to_thread(command.downgrade, db.alembic_config(database_url), "0010")
        async with engine.begin() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            handles = (await conn.execute(text("SELECT handle FROM commissioner"))).scalars().all()
        assert "case_material" not in tables and handles == ["wang"]
        await db.upgrade(database_url)
    finally:
        await engine.dispose()
