"""The machine's PostgreSQL and Redis for the tests that need them. Without them such a test
skips with the reason; under ``TEST_REQUIRE_SERVICES=1`` (CI) it fails instead, so a missing
service can never pass as a green run."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("TEST_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> NoReturn:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (TEST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


async def require_redis() -> None:
    """Skip (or fail) unless the machine's Redis answers a PING."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        await client.ping()
    except Exception as exc:
        skip_or_fail(f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}); start it or set TEST_REDIS_URL")
    finally:
        await client.aclose()
