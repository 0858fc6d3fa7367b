"""QIBOT_LOG_FORMAT=json: one JSON object a line, carrying the id of the request being served,
and masked like the text log (message, traceback and any extra field)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from bot.app import create_app
from bot.privacy import REQUEST_ID, configure_logging
from bot.runtime import Runtime

MOBILE = "13812345678"


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook
    yield capsys
    root.handlers[:], hook = saved[0], saved[2]
    root.setLevel(saved[1])
    sys.excepthook = hook


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]


def test_fields_and_masking(json_logs: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")  # here: pytest reattaches capture between setup and call
    log = logging.getLogger("ops.test")
    token = REQUEST_ID.set("req-0123456789")
    try:
        try:
            raise ValueError(f"bad mobile {MOBILE}")
        except ValueError:
            log.exception("turn for %s failed", MOBILE, extra={"contact": f"call {MOBILE}"})
    finally:
        REQUEST_ID.reset(token)
    log.warning("outside any request")
    first, second = lines(json_logs)
    assert first["level"] == "ERROR" and first["logger"] == "ops.test" and first["request_id"] == "req-0123456789"
    assert first["time"] and "turn for" in first["message"] and "exc_info" in first
    assert MOBILE not in json.dumps(first, ensure_ascii=False)
    assert "ValueError" in first["exc_info"] and "1381234" not in first["exc_info"]
    assert second["request_id"] == "-"


async def test_a_log_line_written_while_serving_carries_the_request_id(
    json_logs: pytest.CaptureFixture[str], aiohttp_client: Any, runtime: Runtime
) -> None:
    client = await aiohttp_client(create_app(runtime.settings, runtime))
    configure_logging("INFO", "json")
    # A cross-origin POST is refused with a warning line: written while serving the request.
    response = await client.post("/api/chat/messages", json={"text": "你好"}, headers={"Origin": "http://evil.example"})
    assert response.status == 403
    request_id = response.headers["X-Request-Id"]
    refused = [line for line in lines(json_logs) if "origin" in line["message"]]
    assert refused and refused[0]["request_id"] == request_id
    # nginx's id is kept when it is a sane one, so the two logs can be joined.
    again = await client.get("/healthz", headers={"X-Request-Id": "nginx-4f2a9c1e77"})
    assert again.headers["X-Request-Id"] == "nginx-4f2a9c1e77"
    forged = await client.get("/healthz", headers={"X-Request-Id": "x\u2028<script>"})
    assert forged.headers["X-Request-Id"] != "x\u2028<script>"
