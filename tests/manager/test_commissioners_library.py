"""The commissioners' library in the console: who may open and change it, a site supervisor
held to their own site, every change audited, capacity and suspension felt by matching."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.services import matching
from bot.storage.db import transaction
from bot.storage.models import Commissioner
from tests.helpers.console import form_token
from tests.manager.test_pages import _as, _audited, site  # noqa: F401  (the fixture)

PAGE = "/console/manage/commissioners"


async def _person(runtime: Any, handle: str) -> Commissioner | None:
    async with transaction(runtime.sessions) as session:
        return (await session.execute(select(Commissioner).where(Commissioner.handle == handle))).scalar_one_or_none()


async def test_who_may_open_the_commissioners_library(site: Any) -> None:  # noqa: F811
    client, _, _, _ = site
    client.session.cookie_jar.clear()
    anonymous = await client.get(PAGE, allow_redirects=False)
    assert anonymous.status == 302 and "/console/login" in anonymous.headers["Location"]
    await _as(client, "commissioner")
    assert (await client.get(PAGE, allow_redirects=False)).status == 403
    assert (await client.post(PAGE, data={"action": "add"}, allow_redirects=False)).status == 403
    await _as(client, "manager")
    page = await (await client.get(PAGE)).text()
    for name in ("王明", "张芳", "许强"):
        assert name in page
    assert "不限" in page and "离岗" in page  # no capacity set; xu is off duty


async def test_a_manager_adds_edits_and_suspends_with_an_audit_trail(site: Any) -> None:  # noqa: F811
    client, runtime, _, _ = site
    await _as(client, "manager")
    csrf = await form_token(client, PAGE)
    assert (await client.post(PAGE, data={"action": "add", "handle": "zhao", "name": "赵"})).status == 403  # no CSRF
    added = await client.post(PAGE, allow_redirects=False, data={
        "csrf": csrf, "action": "add", "handle": "zhao", "name": "赵云", "domains": ["testing", "metrology"],
        "site_id": "1", "districts": "湖里区", "max_open_cases": "3"})
    assert added.status == 303
    zhao = await _person(runtime, "zhao")
    assert zhao is not None and zhao.max_open_cases == 3 and zhao.districts == ["湖里区"]
    bad = await client.post(PAGE, data={"csrf": csrf, "action": "edit", "id": str(zhao.id), "name": "赵云",
                                        "domains": "testing", "max_open_cases": "-2"})
    assert bad.status == 400 and "同时在办上限" in await bad.text()
    edited = await client.post(PAGE, allow_redirects=False, data={
        "csrf": csrf, "action": "edit", "id": str(zhao.id), "name": "赵云", "domains": "testing", "site_id": "1",
        "max_open_cases": "", "on_duty": "1"})
    assert edited.status == 303
    zhao = await _person(runtime, "zhao")
    assert zhao is not None and zhao.max_open_cases is None and zhao.domains == ["testing"]
    no_reason = await client.post(PAGE, data={"csrf": csrf, "action": "suspend", "id": str(zhao.id), "reason": " "})
    assert no_reason.status == 400 and "请填写原因" in await no_reason.text()
    suspended = await client.post(PAGE, allow_redirects=False, data={
        "csrf": csrf, "action": "suspend", "id": str(zhao.id), "reason": "长期病假"})
    assert suspended.status == 303
    page = await (await client.get(PAGE)).text()
    assert "长期病假" in page and "暂停" in page
    async with transaction(runtime.sessions) as session:  # a suspended commissioner gets no case
        chosen = await matching.choose_commissioner(session, "testing", "湖里区")
    assert chosen is not None and chosen.handle != "zhao"
    assert await _audited(runtime, "commissioner_add") == ["mgr"]
    assert await _audited(runtime, "commissioner_edit") == ["mgr"]
    assert await _audited(runtime, "commissioner_suspend") == ["mgr"]
    for junk in ({"action": "edit", "id": "x"}, {"action": "suspend", "id": "99999", "reason": "r"},
                 {"action": "edit", "id": str(zhao.id), "name": "赵云", "domains": "testing", "max_open_cases": "²"},
                 {"action": "suspend", "id": "²", "reason": "r"},
                 {"action": "nonsense"}, {"action": "add", "handle": "Bad Handle", "name": "x", "domains": "ip"},
                 {"action": "add", "handle": "wang", "name": "x", "domains": "ip"},
                 {"action": "add", "handle": "okname", "name": "x", "domains": "ip", "site_id": "77"}):
        refused = await client.post(PAGE, data={"csrf": csrf, **junk})
        assert refused.status == 400, junk


async def test_a_site_supervisor_keeps_only_their_own_site(site: Any) -> None:  # noqa: F811
    client, runtime, _, _ = site
    await _as(client, "supervisor-elsewhere")  # zhang supervises 集美
    page = await (await client.get(PAGE)).text()
    assert "张芳" in page and "王明" not in page
    csrf = await form_token(client, PAGE)
    wang = await _person(runtime, "wang")
    assert wang is not None
    refused = await client.post(PAGE, data={"csrf": csrf, "action": "suspend", "id": str(wang.id), "reason": "x"})
    assert refused.status == 400 and "没有这位服务专员" in await refused.text()
    moved = await client.post(PAGE, data={"csrf": csrf, "action": "add", "handle": "sun", "name": "孙",
                                          "domains": "ip", "site_id": "1"})
    assert moved.status == 400 and "本站点" in await moved.text()
    zhang = await _person(runtime, "zhang")
    assert zhang is not None and zhang.site_id is not None
    capped = await client.post(PAGE, allow_redirects=False, data={
        "csrf": csrf, "action": "edit", "id": str(zhang.id), "name": zhang.name, "domains": ["standards", "metrology"],
        "site_id": str(zhang.site_id), "max_open_cases": "4", "on_duty": "1", "supervisor": "0"})
    assert capped.status == 303
    zhang = await _person(runtime, "zhang")
    assert zhang is not None and zhang.max_open_cases == 4 and zhang.is_supervisor  # the flag is a manager's
    assert (await _person(runtime, "wang")).active  # type: ignore[union-attr]
    assert await _audited(runtime, "commissioner_edit") == ["zhang"]
