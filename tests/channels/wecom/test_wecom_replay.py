"""WeCom callbacks under replay protection (issue 13, point 3): the same signed URL with another
body is refused with 409 before anything runs; the same request again is answered once."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.channels.wecom.wecom_helpers import WeComMember


async def test_a_second_body_under_one_signature_is_refused(client: TestClient, member: WeComMember) -> None:
    body, query = member.envelope(member.inner("帮助"))
    first = await client.post("/wecom/callback", params=query, data=body.encode())
    assert first.status == 200 and member.open(await first.text())

    altered = body.replace("</xml>", "<Extra>1</Extra></xml>")  # same Encrypt, so the signature still holds
    replayed = await client.post("/wecom/callback", params=query, data=altered.encode())
    assert replayed.status == 409

    again = await client.post("/wecom/callback", params=query, data=body.encode())
    assert again.status == 200
