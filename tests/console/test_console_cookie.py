"""Behind a trusted proxy that says the browser used HTTPS, the console cookie is Secure; the
same header from an untrusted address changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, load_settings
from tests.helpers.console import PASSWORD, csrf_of


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path / "data"), "QIBOT_TRUSTED_PROXIES": "127.0.0.1"})


async def test_the_cookie_is_secure_when_a_trusted_proxy_forwards_https(
    new_client: Callable[[], Awaitable[Any]]
) -> None:
    client = await new_client()
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    page = await client.get("/console/login", params={"b": "1"}, headers=https)
    assert page.cookies["qibot_console_pre"]["secure"]
    pre = page.cookies["qibot_console_pre"].value  # a client's jar keeps Secure cookies off plain HTTP
    response = await client.post("/console/login", headers={**https, "Cookie": f"qibot_console_pre={pre}"},
                                 allow_redirects=False, data={
        "login": "wang", "password": PASSWORD, "csrf": csrf_of(await page.text()), "next": "/console/"})
    cookie = response.cookies["qibot_console"]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
    plain = await (await new_client()).get("/console/login", params={"b": "1"}, headers={"X-Forwarded-Proto": "http"})
    assert not plain.cookies["qibot_console_pre"]["secure"]
