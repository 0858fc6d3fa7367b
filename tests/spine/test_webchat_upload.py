"""Materials from the web chat: an image or PDF posted to ``/api/chat/upload`` reaches the
visitor's open case with its bytes; other types, oversize bodies, foreign pages and visitors
without a session are refused with a clear error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app import create_app
from bot.channels.webchat import UPLOAD_MAX
from bot.runtime import Runtime
from bot.storage.db import transaction
from bot.storage.models import CaseMaterial

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x02" * 200_000  # beyond the 64 KB JSON limit
INTAKE = ["我要办理 电子秤需要检定", "厦门示例超市有限公司", "91110000802100433B", "林店长", "13812345678", "湖里",
          "2", "确认"]


@pytest.fixture
async def client(aiohttp_client, runtime: Runtime) -> AsyncIterator[TestClient]:
    yield await aiohttp_client(create_app(runtime.settings, runtime))


async def _materials(runtime: Runtime) -> list[CaseMaterial]:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(select(CaseMaterial))).scalars())


async def test_an_uploaded_image_is_kept_on_the_open_case(client: TestClient, runtime: Runtime) -> None:
    await client.get("/")
    for i, line in enumerate(INTAKE):
        reply = await (await client.post("/api/chat/messages", json={"text": line, "id": f"m{i}"})).json()
    assert "QI-2026-" in reply["replies"][0]["text"]
    response = await client.post("/api/chat/upload", data=JPEG, headers={"X-File-Name": "%E7%A7%A4.jpg"})
    assert response.status == 200
    body = await response.json()
    assert "已作为材料附到需求" in body["replies"][0]["text"]
    again = await client.post("/api/chat/upload", data=JPEG, headers={"X-File-Name": "%E7%A7%A4.jpg"})
    assert (await again.json())["duplicate"] is True  # the same bytes again: the same message
    [material] = await _materials(runtime)
    assert (material.status, material.kind, material.content_type, material.size, material.filename) == (
        "stored", "image", "image/jpeg", len(JPEG), "秤.jpg")


async def test_uploads_are_refused_clearly(client: TestClient, runtime: Runtime) -> None:
    no_session = await client.post("/api/chat/upload", data=JPEG)
    assert no_session.status == 400 and "请先发送一条消息" in (await no_session.json())["error"]
    await client.get("/")
    html = await client.post("/api/chat/upload", data=b"<html><script>alert(1)</script>")
    assert html.status == 415 and "只能上传图片" in (await html.json())["error"]
    huge = await client.post("/api/chat/upload", data=b"\xff\xd8\xff" + b"0" * UPLOAD_MAX)
    assert huge.status == 413
    foreign = await client.post("/api/chat/upload", data=JPEG, headers={"Origin": "https://evil.example"})
    assert foreign.status == 403
    no_case = await client.post("/api/chat/upload", data=JPEG)  # a visitor with no open case
    assert no_case.status == 200 and "只能阅读文字" in (await no_case.json())["replies"][0]["text"]
    assert await _materials(runtime) == []
