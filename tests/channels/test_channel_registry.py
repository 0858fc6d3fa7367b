"""The channel contract seen from outside: the app mounts exactly the channels the settings turn
on; ``qibot jobs``, a delivery-only process that loads neither the NLU nor the knowledge base,
delivers the rows of every configured channel; and a bad channel setting still stops any
command at start with the channel's message."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.channels import registry
from bot.cli import main
from bot.config import Settings, load_settings
from bot.services import identities, outbox
from bot.storage import db
from bot.storage.db import transaction
from bot.storage.models import Outbox
from tests.helpers.fakes.telegram_server import FakeTelegram
from tests.helpers.fakes.wechat_server import FakeWeChat

REPO = Path(__file__).resolve().parents[2]
WECHAT_TOKEN = "qibotjobs1"
WECHAT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 letters or digits
TELEGRAM_TOKEN = "123456789:AAtest-token_for-the-fake-server0"
TELEGRAM_SECRET = "webhook-secret_123"
CHAT_ID = 4242  # the commissioner's Telegram chat

WECHAT_ENV = {"QIBOT_WECHAT_TOKEN": WECHAT_TOKEN, "QIBOT_WECHAT_APP_ID": "wx0123456789abcdef",
              "QIBOT_WECHAT_APP_SECRET": "s", "QIBOT_WECHAT_AES_KEY": WECHAT_AES_KEY}
TELEGRAM_ENV = {"QIBOT_TELEGRAM_TOKEN": TELEGRAM_TOKEN, "QIBOT_TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET}
WECOM_ENV = {"QIBOT_WECOM_CORP_ID": "wx49f0ab532d5d035a", "QIBOT_WECOM_AGENT_ID": "1000002",
             "QIBOT_WECOM_SECRET": "s", "QIBOT_WECOM_TOKEN": "QDG6eK", "QIBOT_WECOM_AES_KEY": WECHAT_AES_KEY}
ROUTES = {"wechat": "/wechat", "telegram": "/telegram/webhook", "wecom": "/wecom/callback"}


def paths(settings: Settings) -> set[str]:
    app = create_app(settings)
    return {resource.canonical for resource in app.router.resources()}


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, ["webchat"]),
        (WECHAT_ENV, ["webchat", "wechat"]),
        (TELEGRAM_ENV, ["webchat", "telegram"]),
        (WECOM_ENV, ["webchat", "wecom"]),
        ({**WECHAT_ENV, **TELEGRAM_ENV, **WECOM_ENV}, ["webchat", "wechat", "telegram", "wecom"]),
    ],
)
def test_the_app_mounts_exactly_the_enabled_channels(tmp_path: Path, env: dict[str, str], names: list[str]) -> None:
    settings = load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path), **env})
    assert [channel.name for channel in registry.configured(settings)] == names
    mounted = paths(settings)
    assert "/" in mounted and "/api/chat/ws" in mounted  # the web chat is always on
    for name, path in ROUTES.items():
        assert (path in mounted) is (name in names), path


def test_a_bad_channel_setting_stops_any_command_with_the_channels_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QIBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QIBOT_TELEGRAM_MODE", "push")
    assert main(["jobs"]) == 2
    assert "QIBOT_TELEGRAM_MODE: must be webhook or polling, got 'push'" in capsys.readouterr().err
    monkeypatch.setenv("QIBOT_TELEGRAM_MODE", "webhook")
    monkeypatch.setenv("QIBOT_WECOM_ROBOT_KEY", "k")
    assert main(["case", "list"]) == 2
    assert "QIBOT_WECOM_CORP_ID: required when any QIBOT_WECOM_* setting is given" in capsys.readouterr().err
    assert not (tmp_path / "qibot.db").exists()  # refused before touching anything


# Runs `qibot jobs` as the console script does, then reports which heavy modules it imported.
JOBS = """
import json, sys
from bot.cli import main
code = main(["jobs"])
heavy = ("intents.classifier", "bot.services.knowledge", "knowledge.retrieval", "bot.dialogue.engine")
print(json.dumps({"exit": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


async def qibot_jobs(env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``qibot jobs`` in its own process (the fake servers keep answering in this one)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QIBOT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", JOBS, cwd=REPO, env={**clean, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    report, probe = out.decode().strip().splitlines()[-2:]
    return json.loads(report), json.loads(probe)


async def test_qibot_jobs_delivers_wechat_and_telegram_rows_without_the_nlu(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    wechat, telegram = FakeWeChat(), FakeTelegram(TELEGRAM_TOKEN)
    wechat_server, telegram_server = await aiohttp_server(wechat.app()), await aiohttp_server(telegram.app())
    env = {
        "QIBOT_DATA_DIR": str(tmp_path / "data"),
        **WECHAT_ENV, "QIBOT_WECHAT_APP_ID": wechat.app_id, "QIBOT_WECHAT_APP_SECRET": wechat.app_secret,
        "QIBOT_WECHAT_API_BASE_URL": str(wechat_server.make_url("")).rstrip("/"),
        **TELEGRAM_ENV, "QIBOT_TELEGRAM_API_BASE_URL": str(telegram_server.make_url("")).rstrip("/"),
    }
    url = load_settings(environ=env).effective_database_url
    (tmp_path / "data").mkdir()
    await db.upgrade(url)
    engine = db.create_engine(url)
    sessions = db.session_factory(engine)
    try:
        # What the serving process left in the outbox: a reply to a WeChat user who wrote
        # recently, a new-case notification to a commissioner on Telegram, and a push to a web
        # chat page, which only the server holding the page's socket can deliver.
        now = datetime.now(UTC)
        async with transaction(sessions) as session:
            user, _ = await identities.touch(session, "wechat", "oWeChatUser1", now)
            await outbox.enqueue(session, channel="wechat", recipient="oWeChatUser1", kind="enterprise_reply",
                                 payload={"text": "【王专员】明天上午上门检定"}, now=now, identity_id=user.id)
            await outbox.enqueue(session, channel="telegram", recipient=str(CHAT_ID), kind="case_assigned",
                                 payload={"text": "【新需求】QI-2026-000001 加油机校准", "case": "QI-2026-000001"},
                                 now=now)
            await outbox.enqueue(session, channel="webchat", recipient="visitor-1", kind="enterprise_reply",
                                 payload={"text": "【王专员】请补充器具清单"}, now=now)

        report, probe = await qibot_jobs(env)

        assert report["notifications_sent"] == 2 and report["retried"] == 0
        assert probe == {"exit": 0, "loaded": []}  # no NLU, no knowledge base, no dialogue engine
        assert wechat.texts_to("oWeChatUser1") == ["【王专员】明天上午上门检定"]
        [message] = telegram.sent("sendMessage", chat_id=CHAT_ID)
        assert "QI-2026-000001" in message["text"] and "reply_markup" in message  # with its buttons
        async with sessions() as session:
            found = (await session.execute(select(Outbox))).scalars()
            rows = {row.channel: (row.status, row.attempts) for row in found}
        # The web chat row is not even claimed: it waits for the server (or the visitor's next message).
        assert rows == {"wechat": ("sent", 1), "telegram": ("sent", 1), "webchat": ("pending", 0)}
    finally:
        await engine.dispose()
