"""Who may open and do what in the console, over real HTTP: anonymous visitors, an enterprise's
web-chat cookie, a commissioner of another site, a supervisor, a manager; forms without or with a
wrong CSRF token; a session left idle; throttled sign-ins; the audit that nobody can rewrite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select, text

from bot.runtime import Runtime
from bot.services import cases
from bot.storage.db import transaction
from bot.storage.models import Enterprise
from bot.storage.staff import StaffAudit, StaffSession
from tests.helpers.clock import Clock
from tests.helpers.console import PASSWORD, csrf_of, form_token, sign_in

Client = Any
MOBILE = "13912345678"
CREDIT = "91350200MA2XXXXX1K"


async def siming_case(runtime: Runtime, domain: str = "metrology") -> str:
    """A case in 思明区 (the center's district), of an enterprise with a mobile and credit code."""
    async with transaction(runtime.sessions) as session:
        enterprise = Enterprise(name="厦门示例计量有限公司", district="思明区", mobile=MOBILE, credit_code=CREDIT,
                                contact_name="周经理")
        session.add(enterprise)
        await session.flush()
        case = await cases.open_case(session, enterprise=enterprise, identity=None, domain=domain,
                                     description=f"加油机需要校准，联系 {MOBILE}", mode="online", district="思明区",
                                     now=runtime.now())
        return case.number


async def signed_in(new_client: Callable[[], Awaitable[Client]], login: str) -> Client:
    client = await new_client()
    response = await sign_in(client, login)
    assert response.status == 303, await response.text()
    return client


def routes(number: str) -> list[tuple[str, str]]:
    return [("GET", "/console/"), ("GET", f"/console/cases/{number}"), ("GET", "/console/audit"),
            ("GET", "/console/events"), ("POST", f"/console/cases/{number}/act"),
            ("POST", f"/console/cases/{number}/reveal"), ("POST", "/console/duty"), ("POST", "/console/logout")]


async def test_anonymous_and_web_chat_visitors_are_sent_to_sign_in_on_every_route(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    number = await siming_case(console_runtime)
    anonymous = await new_client()
    visitor = await new_client()
    assert (await visitor.get("/")).status == 200  # the web chat gives the visitor its session cookie
    assert any(c.key == "qibot_session" for c in visitor.session.cookie_jar)
    for client in (anonymous, visitor):
        for method, path in routes(number):
            response = await client.request(method, path, data={"action": "accept", "csrf": "x"},
                                            allow_redirects=False)
            assert response.status == 302, (method, path, response.status)
            assert response.headers["Location"].startswith("/console/login?next="), (method, path)
    async with transaction(console_runtime.sessions) as session:
        case = await cases.require_case(session, number)
        assert case.status == "new"


async def test_a_notification_link_leads_through_sign_in_back_to_the_case(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    number = await siming_case(console_runtime)
    client = await new_client()
    first = await client.get(f"/console/cases/{number}", allow_redirects=False)
    target = first.headers["Location"]
    assert unquote(target) == f"/console/login?next=/console/cases/{number}"
    bounce = await client.get(target)  # no cookie yet: one same-site reload, for Strict cookies
    assert 'http-equiv="refresh"' in await bounce.text()
    response = await sign_in(client, "wang", next_url=f"/console/cases/{number}")
    assert response.headers["Location"] == f"/console/cases/{number}"
    page = await client.get(response.headers["Location"])
    assert page.status == 200 and number in await page.text()


async def test_sign_in_only_redirects_inside_the_console(new_client: Callable[[], Awaitable[Client]]) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "/console\\..\\x"):
        client = await new_client()
        response = await sign_in(client, "wang", next_url=target)
        assert response.headers["Location"] == "/console/", target


async def test_the_session_cookie_is_httponly_strict_and_secure_behind_https(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    client = await new_client()
    response = await sign_in(client, "wang")
    cookie = response.cookies["qibot_console"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/console"
    assert not cookie["secure"]  # plain HTTP on localhost, no proxy
    async with transaction(console_runtime.sessions) as session:
        stored = (await session.execute(select(StaffSession.token_hash))).scalars().all()
    assert cookie.value not in stored and len(stored) == 1  # only the token's SHA-256 is kept


async def test_a_commissioner_of_another_site_cannot_see_or_touch_the_case(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    number = await siming_case(console_runtime)  # metrology in 思明: wang's site and skill
    li = await signed_in(new_client, "li")
    page = await li.get(f"/console/cases/{number}")
    assert page.status == 404
    assert MOBILE[-4:] not in await page.text()
    token = await form_token(li, "/console/")
    inbox = await (await li.get("/console/")).text()
    assert number not in inbox
    for path, data in ((f"/console/cases/{number}/act", {"action": "accept"}),
                       (f"/console/cases/{number}/act", {"action": "reply", "text": "你好"}),
                       (f"/console/cases/{number}/reveal", {"field": "mobile"})):
        response = await li.post(path, data={**data, "csrf": token}, allow_redirects=False)
        assert response.status == 404, (path, data)
    events = await li.get("/console/events", params={"case": number})
    assert "event: gone" in await events.text()
    async with transaction(console_runtime.sessions) as session:
        case = await cases.require_case(session, number)
        assert case.status == "new" and case.owner_id is None
        assert not (await session.execute(select(StaffAudit).where(StaffAudit.action == "reveal"))).first()


async def test_the_commissioner_of_the_site_works_the_case_and_every_action_is_audited(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    number = await siming_case(console_runtime)
    wang = await signed_in(new_client, "wang")
    assert number in await (await wang.get("/console/")).text()
    token = await form_token(wang, f"/console/cases/{number}")
    for data in ({"action": "accept"}, {"action": "reply", "text": "明天上午上门检定"},
                 {"action": "note", "text": "企业很急"}, {"action": "resolve", "text": "已完成检定"}):
        response = await wang.post(f"/console/cases/{number}/act", data={**data, "csrf": token},
                                   allow_redirects=False)
        assert response.status == 303, (data, await response.text())
    page = await (await wang.get(f"/console/cases/{number}")).text()
    assert "明天上午上门检定" in page and "企业很急" in page and "已办结" in page
    again = await wang.post(f"/console/cases/{number}/act", data={"action": "accept", "csrf": token})
    assert again.status == 409 and f"您已受理 {number}" in await again.text()
    async with transaction(console_runtime.sessions) as session:
        case = await cases.require_case(session, number)
        assert case.status == "resolved" and case.owner is not None and case.owner.handle == "wang"
        actions = (await session.execute(select(StaffAudit.action).order_by(StaffAudit.id))).scalars().all()
    assert actions == ["login", "accept", "reply", "note", "resolve"]


async def test_forms_without_or_with_a_wrong_csrf_token_are_refused(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    number = await siming_case(console_runtime)
    wang = await signed_in(new_client, "wang")
    other = await signed_in(new_client, "chen")
    foreign_token = await form_token(other, "/console/")  # a real token, of another browser
    for data in ({"action": "accept"}, {"action": "accept", "csrf": "0" * 40},
                 {"action": "accept", "csrf": foreign_token}):
        response = await wang.post(f"/console/cases/{number}/act", data=data, allow_redirects=False)
        assert response.status == 403, data
    own = await form_token(wang, "/console/")
    cross_site = await wang.post(f"/console/cases/{number}/act", data={"action": "accept", "csrf": own},
                                 headers={"Origin": "https://evil.example"}, allow_redirects=False)
    assert cross_site.status == 403
    for path in ("/console/duty", "/console/logout"):
        assert (await wang.post(path, data={"on": "0"}, allow_redirects=False)).status == 403
    async with transaction(console_runtime.sessions) as session:
        assert (await cases.require_case(session, number)).status == "new"
    login_page = await (await new_client()).post("/console/login", data={"login": "wang", "password": PASSWORD})
    assert login_page.status == 403  # the sign-in form has a token too


async def test_a_supervisor_sees_every_case_of_the_site_and_a_manager_sees_all_but_acts_only_through_a_commissioner(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    siming = await siming_case(console_runtime, domain="ip")  # not chen's skill, but chen's site
    async with transaction(console_runtime.sessions) as session:
        enterprise = Enterprise(name="翔安示例公司", district="翔安区")
        session.add(enterprise)
        await session.flush()
        xiangan = (await cases.open_case(session, enterprise=enterprise, identity=None, domain="ip",
                                         description="专利检索", mode="online", district="翔安区",
                                         now=console_runtime.now())).number
    chen = await signed_in(new_client, "chen")
    assert (await chen.get(f"/console/cases/{siming}")).status == 200
    assert (await chen.get(f"/console/cases/{xiangan}")).status == 404
    assert (await chen.get("/console/audit")).status == 403
    boss = await signed_in(new_client, "boss")
    for number in (siming, xiangan):
        assert (await boss.get(f"/console/cases/{number}")).status == 200
    token = await form_token(boss, "/console/")
    refused = await boss.post(f"/console/cases/{xiangan}/act", data={"action": "accept", "csrf": token})
    assert refused.status == 403 and "未关联服务专员" in await refused.text()
    audit_page = await boss.get("/console/audit")
    assert audit_page.status == 200 and "login" in await audit_page.text()


async def test_personal_data_is_masked_until_revealed_and_the_reveal_is_audited(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    number = await siming_case(console_runtime)
    wang = await signed_in(new_client, "wang")
    page = await (await wang.get(f"/console/cases/{number}")).text()
    assert MOBILE not in page and CREDIT not in page and "139****5678" in page
    token = csrf_of(page)
    revealed = await (await wang.post(f"/console/cases/{number}/reveal",
                                      data={"field": "mobile", "csrf": token})).text()
    assert MOBILE in revealed and CREDIT not in revealed
    assert MOBILE not in await (await wang.get(f"/console/cases/{number}")).text()  # one response only
    async with transaction(console_runtime.sessions) as session:
        row = (await session.execute(select(StaffAudit).where(StaffAudit.action == "reveal"))).scalar_one()
    assert (row.login, row.case_number, row.detail) == ("wang", number, "revealed mobile")


async def test_an_idle_session_expires_and_is_forgotten(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]], clock: Clock
) -> None:
    wang = await signed_in(new_client, "wang")
    clock.advance(minutes=29)
    assert (await wang.get("/console/", allow_redirects=False)).status == 200  # activity keeps it
    clock.advance(minutes=29)
    assert (await wang.get("/console/", allow_redirects=False)).status == 200
    clock.advance(minutes=31)
    response = await wang.get("/console/", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"].startswith("/console/login")
    events = await wang.get("/console/events", allow_redirects=False)
    assert events.status == 302
    async with transaction(console_runtime.sessions) as session:
        assert (await session.execute(select(func.count(StaffSession.id)))).scalar() == 0


async def test_signing_out_ends_the_session_on_the_server(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    wang = await signed_in(new_client, "wang")
    cookie = next(c.value for c in wang.session.cookie_jar if c.key == "qibot_console")
    token = await form_token(wang, "/console/")
    assert (await wang.post("/console/logout", data={"csrf": token}, allow_redirects=False)).status == 303
    replay = await new_client()
    replay.session.cookie_jar.update_cookies({"qibot_console": cookie})
    assert (await replay.get("/console/", allow_redirects=False)).status == 302


async def test_failed_sign_ins_are_throttled_per_login(new_client: Callable[[], Awaitable[Client]]) -> None:
    client = await new_client()
    for _ in range(5):
        assert (await sign_in(client, "wang", password="wrong-password")).status == 401
    throttled = await sign_in(client, "wang")
    assert throttled.status == 429 and "尝试次数过多" in await throttled.text()
    assert (await sign_in(await new_client(), "li")).status == 303  # another login is not affected


async def test_disabled_accounts_and_unknown_logins_cannot_sign_in(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    from bot.services import staff_accounts

    async with transaction(console_runtime.sessions) as session:
        await staff_accounts.set_disabled(session, "li", True)
    assert (await sign_in(await new_client(), "li")).status == 401
    assert (await sign_in(await new_client(), "nobody")).status == 401


async def test_the_audit_log_cannot_be_changed_even_by_hand(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    await signed_in(new_client, "wang")
    for statement in ("UPDATE staff_audit SET detail = 'x'", "DELETE FROM staff_audit"):
        with pytest.raises(Exception, match="append-only"):
            async with transaction(console_runtime.sessions) as session:
                await session.execute(text(statement))
    async with transaction(console_runtime.sessions) as session:
        assert (await session.execute(select(func.count(StaffAudit.id)))).scalar() == 1


async def test_duty_is_switched_through_the_staff_action(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    wang = await signed_in(new_client, "wang")
    token = await form_token(wang, "/console/")
    assert (await wang.post("/console/duty", data={"on": "0", "csrf": token}, allow_redirects=False)).status == 303
    assert "未值班" in await (await wang.get("/console/")).text()
    boss = await signed_in(new_client, "boss")
    refused = await boss.post("/console/duty", data={"on": "0", "csrf": await form_token(boss, "/console/")})
    assert refused.status == 403
