"""Shared fixtures: settings in a temporary data dir, the NLU and knowledge base loaded once per
session, a runtime on a fresh SQLite database per test, and a real PostgreSQL database when the
machine has one (tests that need it skip with the reason otherwise)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.runtime import Runtime
from bot.services.knowledge import KnowledgeService
from intents.classifier import Nlu
from tests.helpers import postgres
from tests.helpers.chat import Chat
from tests.helpers.clock import Clock
from tests.helpers.runtime import premigrate
from tests.helpers.services import REDIS_URL, require_redis


def pytest_configure(config: pytest.Config) -> None:
    """Let the suite cache bytecode even where the environment sets ``PYTHONDONTWRITEBYTECODE``
    (this machine does). Without the caches every xdist worker compiles the ~250 modules of the
    service and re-rewrites every test module's asserts (8 s of CPU each), and every real ``qibot``
    process a test starts compiles the service again (0.8 s of its ~1.2 s start). The caches go to
    git-ignored ``__pycache__`` directories; workers and subprocesses inherit the setting, since
    xdist starts its workers after this hook."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2id at its production cost (64 MiB, 0.2 s of CPU) for every staff account and sign-in
    made the console tests spend most of their time hashing. The tests are about who may sign in,
    not about the cost parameters, which stay argon2-cffi's defaults in the service (processes the
    CLI tests start use them)."""
    from argon2 import PasswordHasher

    from bot.services import staff_accounts

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(staff_accounts, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        yield


@pytest.fixture(scope="session")
def nlu(tmp_path_factory: pytest.TempPathFactory) -> Nlu:
    return Nlu.load(tmp_path_factory.mktemp("nlu-cache"))


@pytest.fixture(scope="session")
def knowledge() -> KnowledgeService:
    return KnowledgeService()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
async def runtime(settings: Settings, nlu: Nlu, knowledge: KnowledgeService) -> AsyncIterator[Runtime]:
    await premigrate(settings)  # the schema from a template migrated once per process (tests/helpers/runtime.py)
    rt = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    yield rt
    await rt.close()


@pytest.fixture
def clock() -> Clock:
    """The fixed clock: a Wednesday, 10:00 in Xiamen, moved forward only by the test."""
    return Clock()


@pytest.fixture
def chat(runtime: Runtime) -> Chat:
    return Chat(runtime)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database the service supports, with the schema and no rows: a SQLite file (migrated
    by the first start on it), then a PostgreSQL database from the pool."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database at the head migration with no rows, for this test alone (from a
    pool emptied between tests: tests/helpers/postgres.py)."""
    name = postgres.migrated_database()
    yield postgres.url_of(name)
    postgres.give_back(name)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the machine's Redis (skips, or fails in CI, without
    Redis); its keys are deleted afterwards."""
    from redis.asyncio import Redis

    await require_redis()
    prefix = f"qibot-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A new PostgreSQL database without any schema (for tests of the migrations), dropped after."""
    name = postgres.empty_database()
    yield postgres.url_of(name)
    postgres.drop_later(name)
