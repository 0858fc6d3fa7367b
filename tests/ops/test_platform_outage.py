"""A notification platform down for an hour (issue 16): the outbox keeps the rows, retries them
with growing delays on the injected clock, and delivers each once when the platform is back.

End to end: the real WeChat notifier, over HTTP, to the fake WeChat API behind a TCP proxy the
test cuts (connection refused: the platform is unreachable) and restores an hour later; the
dispatcher runs on the settings' retry policy, on both databases.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.channels.wechat.notifier import WeChatNotifier
from bot.config import load_settings
from bot.runtime import Runtime
from bot.services import identities, outbox
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from intents.classifier import Nlu
from tests.channels.wechat.wechat_helpers import wechat_environ
from tests.helpers.cases import outbox_row
from tests.helpers.clock import Clock
from tests.helpers.fakes.wechat_server import FakeWeChat
from tests.helpers.proxy import TcpProxy
from tests.helpers.runtime import start_runtime


@pytest.fixture
async def platform(aiohttp_server: Any) -> AsyncIterator[tuple[FakeWeChat, TcpProxy]]:
    fake = FakeWeChat()
    server = await aiohttp_server(fake.app())
    proxy = await TcpProxy("127.0.0.1", server.port).start()
    yield fake, proxy
    await proxy.close()


@pytest.fixture
async def runtime(tmp_path: Path, database_url: str, platform: tuple[FakeWeChat, TcpProxy], nlu: Nlu,
                  knowledge: KnowledgeService, clock: Clock) -> AsyncIterator[Runtime]:
    fake, proxy = platform
    settings = load_settings(environ={
        "QIBOT_DATA_DIR": str(tmp_path / "data"),
        "QIBOT_DATABASE_URL": database_url,
        **wechat_environ(fake, f"http://127.0.0.1:{proxy.port}"),
        "QIBOT_OUTBOX_TIMEOUT": "2",
    })
    rt = await start_runtime(settings, nlu, knowledge, clock)
    notifier = rt.dispatcher.notifiers["wechat"]
    assert isinstance(notifier, WeChatNotifier)
    notifier.clock = clock  # its 48-hour window is judged on the test's clock too
    yield rt
    await rt.close()


async def test_rows_are_held_through_an_hour_of_outage_and_delivered_once_after(
    runtime: Runtime, platform: tuple[FakeWeChat, TcpProxy], clock: Clock
) -> None:
    fake, proxy = platform
    openid = "o" + "u" * 27
    async with transaction(runtime.sessions) as session:
        identity, _ = await identities.touch(session, "wechat", openid, clock())
        rows = [await outbox.enqueue(session, channel="wechat", recipient=openid, kind="reply",
                                     payload={"text": f"您的进度通知 {n}", "rendered": True, "script": "hans"},
                                     now=clock(), identity_id=identity.id) for n in (1, 2)]
    assert None not in rows

    await proxy.cut()
    down_since = clock()
    attempts_at: list[float] = []
    while clock() - down_since < timedelta(hours=1):
        stats = await runtime.dispatcher.run_once()
        if stats.handled:
            attempts_at.append((clock() - down_since).total_seconds())
        first = await outbox_row(runtime.sessions, rows[0])
        assert first.status == "pending"  # held, never dropped, never "dead" within the hour
        assert first.next_attempt_at is not None
        clock.now = max(first.next_attempt_at, clock.now + timedelta(seconds=1))
    first, second = [await outbox_row(runtime.sessions, r) for r in rows]
    assert fake.texts_to(openid) == []
    # Backing off: the gaps grow (5 s, 10 s, … up to the 15-minute cap), so an hour costs about
    # ten attempts, not thousands.
    gaps = [b - a for a, b in itertools.pairwise(attempts_at)]
    assert gaps == sorted(gaps) and gaps[0] <= 10 and gaps[-1] >= 600
    assert 6 <= first.attempts <= 12 and first.last_error
    assert second.status == "pending" and second.attempts == first.attempts  # tried after the first, in order

    await proxy.restore()
    clock.now = max(first.next_attempt_at, clock.now)
    await runtime.dispatcher.run_once()
    await runtime.dispatcher.run_once()
    assert fake.texts_to(openid) == ["您的进度通知 1", "您的进度通知 2"]
    assert [(await outbox_row(runtime.sessions, r)).status for r in rows] == ["sent", "sent"]
    clock.advance(hours=1)
    await runtime.dispatcher.run_once()
    assert fake.texts_to(openid) == ["您的进度通知 1", "您的进度通知 2"]  # once each
