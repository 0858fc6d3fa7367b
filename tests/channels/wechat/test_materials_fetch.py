"""An image an enterprise sends in WeChat reaches its case with its bytes: the WeChat notifier
downloads the temporary media (``/cgi-bin/media/get`` of the fake server) through the outbox;
an id WeChat no longer knows is recorded as a failure the case page can show."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from bot.runtime import Runtime
from bot.services import cases
from bot.storage.db import transaction
from bot.storage.models import CaseMaterial, ChannelIdentity, Enterprise, Outbox
from bot.storage.types import utcnow
from tests.channels.wechat.wechat_helpers import WeChatServers
from tests.helpers.fakes.wechat_server import MEDIA_GET, FakeWeChat

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4


async def _user_with_case(wechat: WeChatServers, runtime: Runtime) -> str:
    user = wechat.user()
    assert await wechat.say(user, "你好")
    async with transaction(runtime.sessions) as session:
        identity = (await session.execute(select(ChannelIdentity).where(ChannelIdentity.external_id == user))
                    ).scalar_one()
        enterprise = Enterprise(name="厦门示例计量有限公司", district="思明区")
        session.add(enterprise)
        await session.flush()
        identity.enterprise_id = enterprise.id
        await cases.open_case(session, enterprise=enterprise, identity=identity, domain="metrology",
                              description="电子秤检定", mode="online", district="思明区", now=utcnow())
    return user


async def _materials(runtime: Runtime) -> list[CaseMaterial]:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(select(CaseMaterial).order_by(CaseMaterial.id))).scalars())


async def test_an_image_sent_in_wechat_is_fetched_and_kept_on_its_case(wechat: WeChatServers, runtime: Runtime,
                                                                       fake: FakeWeChat) -> None:
    user = await _user_with_case(wechat, runtime)
    fake.media["MEDIA_1"] = (JPEG, "MEDIA_1.jpg")
    reply = await wechat.send(user, "image", {"PicUrl": "http://example.invalid/x.jpg", "MediaId": "MEDIA_1",
                                              "MsgId": wechat.next_id()})
    assert reply is not None and "材料" in reply["Content"]
    [pending] = await _materials(runtime)
    assert (pending.status, pending.kind, pending.ref) == ("pending", "image", "wechat-media:MEDIA_1")
    await runtime.dispatcher.run_once()
    [stored] = await _materials(runtime)
    assert stored.status == "stored" and stored.content_type == "image/jpeg" and stored.size == len(JPEG)
    assert stored.sha256 == hashlib.sha256(JPEG).hexdigest() and stored.filename == "MEDIA_1.jpg"
    assert [c.query["media_id"] for c in fake.calls if c.path == MEDIA_GET] == ["MEDIA_1"]
    assert not fake.texts_to(user)  # nothing was said to the user by the fetch


async def test_a_media_wechat_no_longer_has_is_a_recorded_failure_and_a_flaky_one_is_retried(
        wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat) -> None:
    user = await _user_with_case(wechat, runtime)
    await wechat.send(user, "image", {"PicUrl": "http://example.invalid/y.jpg", "MediaId": "GONE",
                                      "MsgId": wechat.next_id()})
    fake.media["LATER"] = (JPEG, "LATER.jpg")
    await runtime.dispatcher.run_once()  # GONE → 40007
    fake.fail(MEDIA_GET, 503)  # the second one meets a WeChat outage first
    await wechat.send(user, "image", {"PicUrl": "http://example.invalid/z.jpg", "MediaId": "LATER",
                                      "MsgId": wechat.next_id()})
    await runtime.dispatcher.run_once()  # LATER → HTTP 503: retried later
    gone, later = await _materials(runtime)
    assert gone.status == "failed" and "3 天" in (gone.error or "")
    assert later.status == "pending"
    async with transaction(runtime.sessions) as session:
        row = (await session.execute(select(Outbox).where(Outbox.recipient == f"material:{later.id}"))).scalar_one()
        row.next_attempt_at = utcnow()  # the backoff is over
    await runtime.dispatcher.run_once()
    assert (await _materials(runtime))[1].status == "stored"


async def test_without_an_app_secret_the_case_page_says_the_image_cannot_be_fetched(
        wechat: WeChatServers, runtime: Runtime) -> None:
    from bot.channels.wechat.notifier import HoldingNotifier
    from bot.notify.base import Delivery, Notification
    from bot.services import materials

    user = await _user_with_case(wechat, runtime)
    await wechat.send(user, "image", {"PicUrl": "http://example.invalid/x.jpg", "MediaId": "M9",
                                      "MsgId": wechat.next_id()})
    [pending] = await _materials(runtime)
    holding = HoldingNotifier(runtime.sessions)
    done = await holding.deliver(Notification(1, "wechat", f"material:{pending.id}", materials.FETCH_KIND,
                                              {"material_id": pending.id, "media_id": "M9"}))
    assert done is Delivery.SENT
    [failed] = await _materials(runtime)
    assert failed.status == "failed" and "AppSecret" in (failed.error or "")
    assert await holding.deliver(Notification(2, "wechat", user, "reply", {"text": "hi"})) is Delivery.HELD
