"""``/wechat`` over real HTTP against the real app and runtime: verification, the three
modes, hostile input, retries and the 5-second budget."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto

from bot.runtime import Runtime
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, MessageLog, Outbox
from tests.channels.wechat.wechat_helpers import (
    ACCOUNT,
    AES_KEY,
    TOKEN,
    EchoHandler,
    WeChatServers,
    client_for,
    message_xml,
    put_first,
    settle,
    signed,
)
from tests.helpers.fakes.wechat_server import FakeWeChat


async def inbound_count(runtime: Runtime, message_id: str) -> int:
    query = select(func.count()).where(MessageLog.direction == "in", MessageLog.channel_message_id == message_id)
    async with transaction(runtime.sessions) as session:
        return int((await session.execute(query)).scalar_one())


async def outbox_rows(runtime: Runtime) -> list[Outbox]:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(select(Outbox).where(Outbox.channel == "wechat"))).scalars())


# --- URL verification ------------------------------------------------------------------------


async def test_url_verification_echoes_echostr(app_client: TestClient) -> None:
    ts, nonce = str(int(time.time())), "1320562132"
    ok = await app_client.get("/wechat", params={"signature": signed(TOKEN, ts, nonce), "timestamp": ts,
                                                 "nonce": nonce, "echostr": "5837397520614375416"})
    assert ok.status == 200 and await ok.text() == "5837397520614375416"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"signature": "0" * 40}, 403),
        ({"timestamp": str(int(time.time()) - 3600)}, 403),  # re-signed below: only the age is wrong
        ({"echostr": ""}, 400),
        ({"nonce": ""}, 400),
    ],
)
async def test_url_verification_refusals(app_client: TestClient, caplog: pytest.LogCaptureFixture,
                                         change: dict[str, str], status: int) -> None:
    ts, nonce = change.get("timestamp", str(int(time.time()))), change.get("nonce", "42")
    params = {"signature": signed(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "abc"} | change
    with caplog.at_level(logging.WARNING, logger="bot.channels.wechat"):
        response = await app_client.get("/wechat", params=params)
    assert response.status == status
    assert "abc" not in await response.text()
    assert any("callback refused" in r.getMessage() for r in caplog.records)


# --- modes -------------------------------------------------------------------------------------


async def test_safe_mode_round_trip(wechat: WeChatServers, runtime: Runtime) -> None:
    user = wechat.user()
    reply = await wechat.send(user, "text", {"Content": "你好", "MsgId": "100001"})
    assert reply is not None
    assert (reply["ToUserName"], reply["FromUserName"], reply["MsgType"]) == (user, ACCOUNT, "text")
    assert "质量基础设施" in reply["Content"]
    assert await inbound_count(runtime, "100001") == 1


async def test_plaintext_mode_round_trip(aiohttp_client: Any, runtime: Runtime, fake: FakeWeChat) -> None:
    plain = WeChatServers(await client_for(aiohttp_client, runtime, wechat_mode="plain"), fake.app_id,
                          encrypted=False)
    user = plain.user()
    reply = await plain.send(user, "text", {"Content": "你好", "MsgId": "100002"})
    assert reply is not None and "质量基础设施" in reply["Content"]
    refused = await plain.post(message_xml(user, "text", {"Content": "x", "MsgId": "100003"}), encrypted=True)
    assert refused.status == 400


async def test_compatible_mode_takes_both(aiohttp_client: Any, runtime: Runtime, fake: FakeWeChat) -> None:
    both = WeChatServers(await client_for(aiohttp_client, runtime, wechat_mode="compatible"), fake.app_id)
    user = both.user()
    assert "质量基础设施" in (await both.say(user, "你好") or "")  # encrypted in, encrypted out
    reply = await both.send(user, "text", {"Content": "谢谢", "MsgId": both.next_id()}, encrypted=False)
    assert reply is not None and reply["Content"]


async def test_safe_mode_refuses_plaintext(wechat: WeChatServers) -> None:
    response = await wechat.post(message_xml(wechat.user(), "text", {"Content": "x", "MsgId": "1"}), encrypted=False)
    assert response.status == 403


# --- hostile input -----------------------------------------------------------------------------


async def test_wrong_appid_is_refused(wechat: WeChatServers, runtime: Runtime) -> None:
    other = WeChatCrypto(TOKEN, AES_KEY, "wx9999999999999999")
    response = await wechat.post(message_xml(wechat.user(), "text", {"Content": "x", "MsgId": "200001"}),
                                 crypto=other)
    assert response.status == 403
    assert await inbound_count(runtime, "200001") == 0


def _raw_params(body_cipher: str | None = None, *, ts: int | None = None) -> dict[str, str]:
    stamp, nonce = str(ts or int(time.time())), "77"
    params = {"timestamp": stamp, "nonce": nonce, "signature": signed(TOKEN, stamp, nonce)}
    if body_cipher is not None:
        params |= {"encrypt_type": "aes", "msg_signature": signed(TOKEN, stamp, nonce, body_cipher)}
    return params


@pytest.mark.parametrize(
    ("inner", "status"),
    [
        ("<xml><FromUserName>", 400),  # malformed inside the ciphertext
        ('<!DOCTYPE x [<!ENTITY e "boom">]><xml><MsgType>&e;</MsgType></xml>', 400),
        ("<xml><ToUserName>gh</ToUserName></xml>", 400),  # no MsgType
    ],
)
async def test_bad_inner_xml_is_a_4xx(wechat: WeChatServers, inner: str, status: int) -> None:
    response = await wechat.post(inner)
    assert response.status == status


@pytest.mark.parametrize(
    ("body", "params", "status"),
    [
        (b"<xml><Encrypt>", lambda: _raw_params("x"), 400),
        (b'<!DOCTYPE x [<!ENTITY e "A">]><xml><Encrypt>&e;</Encrypt></xml>', lambda: _raw_params("A"), 400),
        (b"<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>", lambda: _raw_params("AAAA"), 400),  # not a ciphertext
        (b"<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>", lambda: _raw_params("BBBB"), 403),  # bad msg_signature
        (b"<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>", lambda: _raw_params("AAAA", ts=1000), 403),  # stale
        (b"<xml></xml>", lambda: _raw_params(""), 400),  # no Encrypt, no msg_signature
        ("<xml>\udcff</xml>".encode("utf-8", "surrogatepass"), lambda: _raw_params("x"), 400),  # not UTF-8
        (b"<xml>" + b"A" * 40_000 + b"</xml>", lambda: _raw_params("x"), 413),
    ],
)
async def test_hostile_bodies_get_a_4xx_and_a_log_line(
    app_client: TestClient,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    params: Callable[[], dict[str, str]],
    status: int,
) -> None:
    # Signed when the test runs, not when it is collected: a long run must not make them stale.
    with caplog.at_level(logging.WARNING, logger="bot.channels.wechat"):
        response = await app_client.post("/wechat", params=params(), data=body)
    assert response.status == status
    assert any("callback refused" in r.getMessage() for r in caplog.records)


async def test_cdata_terminator_in_the_user_text_and_in_the_reply(wechat: WeChatServers, runtime: Runtime) -> None:
    put_first(runtime, EchoHandler())
    assert await wechat.say(wechat.user(), "a]]>b]]><xml>") == "echo: a]]>b]]><xml>"


# --- retries and the budget --------------------------------------------------------------------


async def test_concurrent_and_late_retries_get_one_identical_answer(
    wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat
) -> None:
    echo = EchoHandler(delay=0.3)
    put_first(runtime, echo)
    user = wechat.user()
    first_three = await asyncio.gather(*(wechat.say(user, "检定证书", "300001") for _ in range(3)))
    late = await wechat.say(user, "检定证书", "300001")
    assert first_three == ["echo: 检定证书"] * 3 and late == "echo: 检定证书"
    assert echo.calls == 1
    assert await inbound_count(runtime, "300001") == 1
    await runtime.dispatcher.run_once()
    assert await outbox_rows(runtime) == [] and fake.sent == []


async def test_a_retry_after_the_answer_replays_it_with_its_choices(wechat: WeChatServers, runtime: Runtime) -> None:
    user = wechat.user()
    first = await wechat.say(user, "CCC认证找谁办", "300101")
    again = await wechat.say(user, "CCC认证找谁办", "300101")
    assert first is not None and "weixin://bizmsgmenu" in first  # suggestions offered as choices to tap
    assert again == first  # the replay is the whole answer, choices included
    assert await inbound_count(runtime, "300101") == 1


async def test_a_slow_engine_answers_success_then_pushes_once(
    aiohttp_client: Any, runtime: Runtime, fake: FakeWeChat
) -> None:
    client = await client_for(aiohttp_client, runtime, wechat_reply_budget=0.2)
    servers = WeChatServers(client, fake.app_id)
    echo = EchoHandler(delay=0.8)
    put_first(runtime, echo)
    user = servers.user()
    assert await servers.say(user, "慢一点", "400001") is None  # "success", not the answer: the budget ran out
    assert await servers.say(user, "慢一点", "400001") is None  # a retry while it runs: no second answer
    await settle(runtime, client)
    stats = await runtime.dispatcher.run_once()
    assert stats.sent == 1 and fake.texts_to(user) == ["echo: 慢一点"]
    assert await servers.say(user, "慢一点", "400001") is None  # a retry after the push: still "success"
    await runtime.dispatcher.run_once()
    assert fake.texts_to(user) == ["echo: 慢一点"] and echo.calls == 1


async def test_a_retry_on_another_worker_never_makes_a_second_answer(
    aiohttp_client: Any, runtime: Runtime, fake: FakeWeChat
) -> None:
    """Two app instances = two in-process maps of running turns: the database claim decides."""
    impatient = WeChatServers(await client_for(aiohttp_client, runtime, wechat_reply_budget=0.2), fake.app_id)
    other = WeChatServers(await client_for(aiohttp_client, runtime), fake.app_id)
    put_first(runtime, EchoHandler(delay=0.6))
    user = impatient.user()
    assert await impatient.say(user, "两个进程", "500001") is None
    replayed = await other.say(user, "两个进程", "500001")
    await settle(runtime, impatient.client)
    await runtime.dispatcher.run_once()
    answers = ([replayed] if replayed else []) + fake.texts_to(user)
    assert answers == ["echo: 两个进程"]


# --- events and non-text -----------------------------------------------------------------------


async def identity(runtime: Runtime, openid: str) -> ChannelIdentity:
    async with transaction(runtime.sessions) as session:
        return (
            await session.execute(select(ChannelIdentity).where(ChannelIdentity.external_id == openid))
        ).scalar_one()


async def test_subscribe_welcomes_and_unsubscribe_is_recorded(wechat: WeChatServers, runtime: Runtime) -> None:
    user = wechat.user()
    welcome = await wechat.send(user, "event", {"Event": "subscribe"})
    assert welcome is not None and "质量基础设施" in welcome["Content"]
    assert await wechat.send(user, "event", {"Event": "unsubscribe"}) is None
    assert (await identity(runtime, user)).subscribed is False
    await wechat.send(user, "event", {"Event": "subscribe"})
    assert (await identity(runtime, user)).subscribed is True


async def test_a_menu_click_is_answered_like_the_typed_text(wechat: WeChatServers, runtime: Runtime) -> None:
    clicked = await wechat.click(wechat.user(), "PROGRESS")
    typed = await wechat.say(wechat.user(), "我的需求进度")
    assert clicked and clicked == typed
    async with transaction(runtime.sessions) as session:
        texts = (await session.execute(select(MessageLog.text).where(MessageLog.channel_message_id.like("ev:%"))))
        assert list(texts.scalars()) == ["我的需求进度"]


async def test_an_image_gets_a_polite_reply_and_its_media_id_is_kept(wechat: WeChatServers, runtime: Runtime) -> None:
    reply = await wechat.send(wechat.user(), "image", {"PicUrl": "http://mmbiz.qpic.cn/x", "MediaId": "MEDIA_1",
                                                       "MsgId": "600001"})
    assert reply is not None and "图片" in reply["Content"]
    async with transaction(runtime.sessions) as session:
        row = (await session.execute(select(MessageLog).where(MessageLog.channel_message_id == "600001"))).scalar_one()
    assert row.kind == "image" and "media_id=MEDIA_1" in row.text


async def test_views_and_unknown_types_are_acknowledged_silently(wechat: WeChatServers) -> None:
    user = wechat.user()
    assert await wechat.send(user, "event", {"Event": "VIEW", "EventKey": "https://example.org"}) is None
    assert await wechat.send(user, "miniprogrampage", {"Title": "x", "MsgId": "600002"}) is None




async def test_an_answer_over_the_size_limit_is_continued_by_push(
    wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat
) -> None:
    put_first(runtime, EchoHandler(prefix="计量检定" * 150 + "\n\n"))  # 1800 bytes, then the echo
    user = wechat.user()
    first = await wechat.say(user, "续" * 300, "700001")
    assert first == "计量检定" * 150
    assert await wechat.say(user, "续" * 300, "700001") == first  # a retry: same first part, no second push
    await runtime.dispatcher.run_once()
    assert fake.texts_to(user) == ["续" * 300]


async def test_a_late_turn_that_fails_is_run_again_not_lost(
    aiohttp_client: Any, runtime: Runtime, fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After "success" WeChat will not retry, so the channel does (e.g. SQLite said "locked")."""
    from bot.channels.wechat import inbound

    monkeypatch.setattr(inbound, "LATE_RETRIES", (0.05, 0.05))
    real_handle = runtime.dialogue.handle
    calls = 0

    async def flaky(message: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.4)
            raise RuntimeError("database is locked")
        return await real_handle(message)

    monkeypatch.setattr(runtime.dialogue, "handle", flaky)
    client = await client_for(aiohttp_client, runtime, wechat_reply_budget=0.1)
    servers = WeChatServers(client, fake.app_id)
    put_first(runtime, EchoHandler())
    user = servers.user()
    assert await servers.say(user, "再试一次", "800001") is None
    await settle(runtime, client)
    await runtime.dispatcher.run_once()
    assert calls == 2 and fake.texts_to(user) == ["echo: 再试一次"]
