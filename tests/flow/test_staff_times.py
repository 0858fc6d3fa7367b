"""Out of hours the enterprise is told when someone will reply; staff see the same moment, in
Beijing time with its date, whatever the server's own time zone: in the commissioner's
notification, ``qibot case show`` and ``qibot case list``. Complaint statuses read in Chinese."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.config import Settings
from bot.runtime import Runtime
from bot.storage.models import Outbox
from tests.helpers.chat import Chat
from tests.helpers.clock import Clock


@pytest.fixture
def server_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def cli(settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
              *args: str) -> str:
    monkeypatch.setenv("QIBOT_DATA_DIR", str(settings.data_dir))
    capsys.readouterr()
    assert await asyncio.to_thread(main, list(args)) == 0
    return capsys.readouterr().out


async def test_staff_see_the_promised_moment_in_beijing_time(
    flow_runtime: Runtime, settings: Settings, clock: Clock, server_in_utc: None,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock.advance(hours=10)  # Wednesday 20:00 in Xiamen, 12:00 UTC
    chat = Chat(flow_runtime, user="late")
    await chat.say("转人工")
    replies = await chat.say("加油机检定证书到期了，要重新检定")
    assert any("11月26日 08:30" in r for r in replies)  # what the enterprise is told

    async with flow_runtime.sessions() as session:
        texts = [r.payload["text"] for r in (await session.execute(
            select(Outbox).where(Outbox.channel == "console", Outbox.kind == "live_requested"))).scalars()]
    assert len(texts) == 1 and "2026-11-26 08:30（北京时间）" in texts[0] and "加油机检定证书到期" in texts[0]

    shown = await cli(settings, capsys, monkeypatch, "case", "show", "QI-2026-000001")
    assert "已告知企业预计 2026-11-26 08:30（北京时间）后回复" in shown
    assert "2026-11-25 20:00" in shown and "2026-11-25 12:00" not in shown  # the timeline, not UTC
    listed = await cli(settings, capsys, monkeypatch, "case", "list")
    assert "2026-11-25 20:00" in listed and "2026-11-25 12:00" not in listed


async def test_complaint_statuses_read_in_chinese_on_the_staff_side(
    flow_runtime: Runtime, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    await Chat(flow_runtime, user="shop").say("我要投诉，专员答应的事一直没有办")
    listed = await cli(settings, capsys, monkeypatch, "complaint", "list")
    assert "TS-2026-000001" in listed and "处理中" in listed and "open" not in listed
