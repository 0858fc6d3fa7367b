"""Driving the staff console over real HTTP: accounts, signing in, and reading forms' CSRF tokens."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from bot.runtime import Runtime
from bot.services import staff_accounts
from bot.storage.db import transaction

PASSWORD = "correct-horse-battery"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')

# login -> (role, commissioner handle): wang and li are commissioners of different sites (the
# center in 思明, the 湖里 sub-center), chen the center's supervisor, boss a manager.
ACCOUNTS = {"wang": ("commissioner", "wang"), "li": ("commissioner", "li"), "chen": ("supervisor", "chen"),
            "boss": ("manager", None)}


async def add_accounts(runtime: Runtime) -> None:
    async with transaction(runtime.sessions) as session:
        for login, (role, handle) in ACCOUNTS.items():
            await staff_accounts.add(session, login=login, display_name=login.title(), role=role, password=PASSWORD,
                                     commissioner=handle, now=runtime.now())


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form token"
    return found.group(1)


async def sign_in(client: TestClient[Any, Any], login: str, password: str = PASSWORD, next_url: str = "/console/"
                  ) -> Any:
    """Open the sign-in page (as a browser would, keeping its cookie) and post the form; returns
    the response to the post (not followed)."""
    page = await client.get("/console/login", params={"b": "1", "next": next_url})
    token = csrf_of(await page.text())
    return await client.post("/console/login", data={"login": login, "password": password, "csrf": token,
                                                     "next": next_url}, allow_redirects=False)


async def form_token(client: TestClient[Any, Any], path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, (path, response.status)
    return csrf_of(await response.text())
