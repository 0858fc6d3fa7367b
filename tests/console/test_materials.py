"""The materials on the case page: images as thumbnails and files as downloads, each through a
route that checks the staff member's scope (404 outside it, for another case's material, for an
id that is not one), audits the view, and answers with a type sniffed from the bytes, a safe
Content-Disposition, ``nosniff`` and a sandbox; no input reaches the file system."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.runtime import Runtime
from bot.services import cases, materials
from bot.storage.db import transaction
from bot.storage.staff import StaffAudit
from tests.console.test_console_access import signed_in, siming_case

Client = Any
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 600
PDF = b"%PDF-1.4\n" + b"0" * 300
HTML = b"<html><script>alert(1)</script></html>"


async def _attach(runtime: Runtime, number: str, content: bytes | None, filename: str | None = None,
                  kind: str = "image") -> int:
    async with transaction(runtime.sessions) as session:
        case = await cases.require_case(session, number)
        material = await materials.record(session, case, kind=kind, ref=f"upload:{kind}", channel="webchat",
                                          now=runtime.now())
        assert material is not None
        if content is not None:
            await materials.store(session, material.id, content, filename=filename, now=runtime.now())
        return material.id


@pytest.fixture
async def attached(console_runtime: Runtime) -> tuple[str, dict[str, int]]:
    number = await siming_case(console_runtime)
    ids = {"jpeg": await _attach(console_runtime, number, JPEG, "门店照片.jpg"),
           "pdf": await _attach(console_runtime, number, PDF, '../../etc/passwd"\r\nX-Evil: 1.pdf', kind="file"),
           "html": await _attach(console_runtime, number, HTML, "photo.jpg"),
           "pending": await _attach(console_runtime, number, None)}
    return number, ids


async def test_the_case_page_shows_thumbnails_and_the_image_is_served_inline_and_audited(
        console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]],
        attached: tuple[str, dict[str, int]]) -> None:
    number, ids = attached
    wang = await signed_in(new_client, "wang")
    page = await (await wang.get(f"/console/cases/{number}")).text()
    url = f"/console/cases/{number}/materials/{ids['jpeg']}"
    assert f'<img class="material__thumb" src="{url}"' in page
    assert f'/materials/{ids["pdf"]}" download' in page and "正在从webchat取回" in page
    response = await wang.get(url)
    assert response.status == 200 and await response.read() == JPEG
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith(f'inline; filename="material-{ids["jpeg"]}.jpg"')
    assert "filename*=UTF-8''%E9%97%A8%E5%BA%97%E7%85%A7%E7%89%87.jpg" in response.headers["Content-Disposition"]
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert "no-store" in response.headers["Cache-Control"]
    async with transaction(console_runtime.sessions) as session:
        rows = (await session.execute(select(StaffAudit).where(StaffAudit.action == "material_view"))).scalars().all()
    assert [(r.login, r.case_number) for r in rows] == [("wang", number)]


async def test_files_download_with_their_real_type_and_a_safe_name(
        new_client: Callable[[], Awaitable[Client]], attached: tuple[str, dict[str, int]]) -> None:
    number, ids = attached
    wang = await signed_in(new_client, "wang")
    pdf = await wang.get(f"/console/cases/{number}/materials/{ids['pdf']}")
    disposition = pdf.headers["Content-Disposition"]
    assert pdf.status == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert disposition.startswith(f'attachment; filename="material-{ids["pdf"]}.pdf"')
    assert "\r" not in disposition and "\n" not in disposition and "X-Evil" not in pdf.headers
    assert "%2F" not in disposition and "/" not in disposition.split("filename*=", 1)[1]
    # An HTML page named photo.jpg is neither an image nor HTML here: a download of unknown bytes.
    html = await wang.get(f"/console/cases/{number}/materials/{ids['html']}")
    assert html.headers["Content-Type"] == "application/octet-stream"
    assert html.headers["Content-Disposition"].startswith("attachment;")
    assert hashlib.sha256(await html.read()).hexdigest() == hashlib.sha256(HTML).hexdigest()


async def test_outside_the_scope_or_the_case_every_material_is_not_found(
        console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]],
        attached: tuple[str, dict[str, int]]) -> None:
    number, ids = attached
    url = f"/console/cases/{number}/materials/{ids['jpeg']}"
    anonymous = await new_client()
    redirected = await anonymous.get(url, allow_redirects=False)
    assert redirected.status == 302 and "/console/login" in redirected.headers["Location"]
    li = await signed_in(new_client, "li")  # a commissioner of another site
    assert (await li.get(url)).status == 404
    other = await siming_case(console_runtime, domain="ip")  # a case wang cannot see (not in his skills)
    other_material = await _attach(console_runtime, other, JPEG)
    wang = await signed_in(new_client, "wang")
    assert (await wang.get(f"/console/cases/{other}/materials/{other_material}")).status == 404
    assert (await wang.get(f"/console/cases/{number}/materials/{other_material}")).status == 404  # not this case's
    assert (await wang.get(f"/console/cases/{number}/materials/{ids['pending']}")).status == 404  # not fetched yet
    for bad in ("../../../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2fcase.html", "1%00", "-1",
                "99999999999999", "１"):
        response = await wang.get(f"/console/cases/{number}/materials/{bad}")
        assert response.status == 404, bad
        assert b"root:" not in await response.read()
    boss = await signed_in(new_client, "boss")  # a manager sees every case
    assert (await boss.get(f"/console/cases/{other}/materials/{other_material}")).status == 200
    async with transaction(console_runtime.sessions) as session:
        logins = (await session.execute(select(StaffAudit.login).where(StaffAudit.action == "material_view"))).all()
    assert [login for (login,) in logins] == ["boss"]  # refusals leave no view behind
