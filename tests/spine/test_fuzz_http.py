"""A bounded fuzz run against the real app over loopback HTTP and WebSocket (issue 13, point 5).

Crafted and random inputs go to every route a stranger can reach — the web chat (HTTP and
WebSocket), static files, the WeChat and WeCom callbacks (some validly signed, so the parsers
behind the signature check are reached too) — with odd methods, paths, cookies, origins and
bodies. Nothing may answer 5xx, no socket may close with 1011 (internal error), nothing may be
logged as an unhandled error, and the app must still serve an ordinary conversation afterwards.

Bounded in count and time (``QIBOT_FUZZ_REQUESTS``, ``QIBOT_FUZZ_FRAMES``, ``QIBOT_FUZZ_SECONDS``,
``QIBOT_FUZZ_SEED`` to widen a run); the aiohttp test client talks to 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import Settings, load_settings
from bot.runtime import Runtime

REQUESTS = int(os.environ.get("QIBOT_FUZZ_REQUESTS", "400"))
FRAMES = int(os.environ.get("QIBOT_FUZZ_FRAMES", "150"))
SECONDS = float(os.environ.get("QIBOT_FUZZ_SECONDS", "90"))
SEED = int(os.environ.get("QIBOT_FUZZ_SEED", "20261207"))

TOKEN = "fuzzToken123"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")
APP_ID = "wx0123456789abcdef"

ODD_STRINGS = [
    "", " ", "你好", "\ud800", "\udfff", "a\x00b", "\x00", "\u202e", "\ufeff", "🙂" * 50, "<script>alert(1)</script>",
    "' OR 1=1 --", "]]>", "&#0;", "%00", "..%2f..%2f", "\\u0000", "1" * 400, "9" * 40, "-1", "1e999", "NaN",
    "转人工", "我要投诉", "我要办理 加油机需要校准", "１３８\u200b１２３４\u200b５６７８", "a" * 5000,
]
PATHS = [
    "/", "/static/chat.js", "/static/" + "x" * 5000, "/static/..%2f..%2fetc%2fpasswd", "/static/%00", "/static/",
    "/static/chat.js%00.png", "/api/chat/history", "/api/chat/messages", "/api/chat/ws", "/api/chat/session",
    "/wechat", "/wecom/callback", "/healthz", "/readyz", "/%ff%fe", "/" + "a/" * 1100, "/api/chat/../../etc/passwd",
    "/static/%E4%BD%A0%E5%A5%BD", "/static/\u4f60\u597d.js", "/console/cases/QI-2026-000001",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={
        "QIBOT_DATA_DIR": str(tmp_path / "data"),
        "QIBOT_WECHAT_TOKEN": TOKEN,
        "QIBOT_WECHAT_APP_ID": APP_ID,
        "QIBOT_WECHAT_APP_SECRET": "secret",
        "QIBOT_WECHAT_AES_KEY": AES_KEY,
        "QIBOT_WECHAT_MODE": "compatible",
        "QIBOT_WECHAT_API_BASE_URL": "http://127.0.0.1:9",
        "QIBOT_WECOM_CORP_ID": "ww0123456789abcdef",
        "QIBOT_WECOM_AGENT_ID": "1000002",
        "QIBOT_WECOM_SECRET": "secret",
        "QIBOT_WECOM_TOKEN": TOKEN,
        "QIBOT_WECOM_AES_KEY": AES_KEY,
        "QIBOT_WECOM_API_BASE_URL": "http://127.0.0.1:9",
    })


class Fuzzer:
    """Builds one hostile request after another from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def string(self) -> str:
        rng = self.rng
        pick = rng.random()
        if pick < 0.5:
            return rng.choice(ODD_STRINGS)
        if pick < 0.8:
            return "".join(chr(rng.choice([rng.randint(0, 0x7F), rng.randint(0x80, 0xFFFF), rng.randint(0x10000,
                                                                                                     0x10FFFF)]))
                           for _ in range(rng.randint(0, 30)))
        return rng.choice(ODD_STRINGS) + rng.choice(ODD_STRINGS)

    def value(self, depth: int = 0) -> Any:
        rng = self.rng
        kind = rng.randint(0, 9 if depth < 3 else 5)
        if kind == 0:
            return None
        if kind == 1:
            return rng.choice([True, False])
        if kind == 2:
            return rng.choice([0, -1, 2**63, 10**30, 1.5, -0.0])
        if kind in (3, 4, 5):
            return self.string()
        if kind in (6, 7):
            return [self.value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {self.string()[:10]: self.value(depth + 1) for _ in range(rng.randint(0, 3))}

    def json_body(self) -> bytes:
        rng = self.rng
        pick = rng.random()
        if pick < 0.35:
            payload: Any = {"text": self.string(), "id": self.string()[:200] or None}
        elif pick < 0.5:
            payload = {"text": self.value(), "id": self.value(), self.string()[:5]: self.value()}
        elif pick < 0.6:
            payload = self.value()
        elif pick < 0.7:
            depth = rng.choice([33, 100, 3000, 30000])
            return ("[" * depth + "]" * depth).encode()
        elif pick < 0.8:
            return rng.choice([b"\xff\xfe\xfa", b"{", b'{"text": "\\ud800\\u0000"}', b'{"text": 1e999}',
                               b'{"text": "a", "text": "b"}', b"null", b"", b'"' + b"a" * 70000 + b'"'])
        else:
            return bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 100)))
        text = json.dumps(payload, ensure_ascii=rng.random() < 0.5)
        return text.encode("utf-8", "surrogatepass")

    def headers(self) -> dict[str, str]:
        rng = self.rng
        headers: dict[str, str] = {}
        if rng.random() < 0.25:
            headers["Origin"] = rng.choice(["https://evil.example", "null", "http://127.0.0.1", "file://",
                                            "http://" + "a" * 300])
        if rng.random() < 0.5:
            headers["Content-Type"] = rng.choice([
                "application/json", "text/xml", "text/plain", "multipart/form-data",
                "application/x-www-form-urlencoded", "application/json; charset=latin1",
            ])
        if rng.random() < 0.3:
            headers["Cookie"] = "qibot_session=" + rng.choice(["A" * 43, "x", "a.b", "%00", "A" * 32 + "." + "B" * 22,
                                                               "🙂", "a" * 3000])
        if rng.random() < 0.1:
            headers["X-Forwarded-For"] = rng.choice(["1.2.3.4", "not an ip", "::1, 10.0.0.1", "9" * 100])
        return headers

    def wechat_xml(self) -> str:
        rng = self.rng
        fields = {
            "ToUserName": "gh_1", "FromUserName": rng.choice(["o" + "a" * 27, self.string()[:30]]),
            "CreateTime": rng.choice([str(int(time.time())), "9" * 40, "-1", self.string()[:20]]),
            "MsgType": rng.choice(["text", "event", "image", "voice", "location", "link", self.string()[:10]]),
            "Content": self.string(), "MsgId": rng.choice([str(rng.randint(1, 10**18)), "9" * 5000, self.string()]),
            "Event": rng.choice(["subscribe", "CLICK", "unsubscribe", self.string()]), "EventKey": self.string(),
        }
        body = "".join(f"<{k}><![CDATA[{v.replace(']]>', '')}]]></{k}>" for k, v in fields.items()
                       if rng.random() < 0.85)
        return rng.choice([f"<xml>{body}</xml>", f"<xml>{body}", "<!DOCTYPE x [<!ENTITY a 'b'>]><xml>&a;</xml>",
                           f"<xml>{self.string()}</xml>"])

    def wechat_params(self) -> dict[str, str]:
        rng = self.rng
        ts, nonce = str(int(time.time())), str(rng.randint(0, 10**9))
        if rng.random() < 0.6:
            signature = hashlib.sha1("".join(sorted((TOKEN, ts, nonce))).encode()).hexdigest()
            return {"timestamp": ts, "nonce": nonce, "signature": signature}
        return {k: rng.choice([self.string()[:80], "9" * 400, ts]) for k in
                rng.sample(["timestamp", "nonce", "signature", "msg_signature", "encrypt_type", "echostr"], 4)}

    async def request(self, client: TestClient) -> int:
        rng = self.rng
        target = rng.random()
        headers = self.headers()
        if target < 0.45:
            method, path, params, data = "POST", "/api/chat/messages", None, self.json_body()
        elif target < 0.6:
            method, path, params = "POST", "/wechat", self.wechat_params()
            data = self.wechat_xml().encode("utf-8", "surrogatepass")
        elif target < 0.7:
            method, path, params = "POST" if rng.random() < 0.7 else "GET", "/wecom/callback", self.wechat_params()
            data = self.wechat_xml().encode("utf-8", "surrogatepass")
        elif target < 0.8:
            params = {**self.wechat_params(), "echostr": self.string()[:300]}
            method, path, data = "GET", "/wechat", None
        elif target < 0.9:
            method, path, params, data = rng.choice(METHODS), rng.choice(PATHS), None, self.json_body()
        else:
            method, path, params, data = "POST", "/api/chat/session", None, self.json_body()
        if params:
            params = {k: v.encode("utf-8", "replace").decode() for k, v in params.items()}
        async with client.request(method, path, params=params, data=data, headers=headers,
                                  allow_redirects=False) as response:
            await response.read()
            return response.status


async def _ws_round(client: TestClient, fuzzer: Fuzzer, frames: int, deadline: float, seen: Counter[str]) -> None:
    rng = fuzzer.rng
    await client.get("/")
    ws = await client.ws_connect("/api/chat/ws")
    for _ in range(frames):
        if time.monotonic() > deadline:
            break
        if ws.closed:
            seen[f"ws closed {ws.close_code}"] += 1
            assert ws.close_code != aiohttp.WSCloseCode.INTERNAL_ERROR
            ws = await client.ws_connect("/api/chat/ws")
        pick = rng.random()
        if pick < 0.1:
            await ws.send_bytes(bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 50))))
        elif pick < 0.2:
            await ws.send_str(fuzzer.string().encode("utf-8", "replace").decode())
        else:
            body = fuzzer.json_body()
            if rng.random() < 0.7 and body.startswith(b"{"):
                body = b'{"type": "message", ' + body[1:] if body != b"{" else body
            await ws.send_str(body.decode("utf-8", "replace"))
        message = await ws.receive(timeout=15)
        if message.type == WSMsgType.TEXT:
            frame = json.loads(message.data)
            seen[f"ws {frame.get('type')}"] += 1
            if frame.get("type") == "session":  # a rotation ticket precedes nothing; read the next
                continue
        else:
            seen[f"ws {message.type.name}"] += 1
            assert message.type != WSMsgType.ERROR
    if not ws.closed:
        await ws.close()
    assert ws.close_code != aiohttp.WSCloseCode.INTERNAL_ERROR


async def test_no_input_gets_a_5xx_or_crashes_the_app(aiohttp_client: Any, runtime: Runtime,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    client = await aiohttp_client(create_app(runtime.settings, runtime))
    fuzzer = Fuzzer(random.Random(SEED))
    deadline = time.monotonic() + SECONDS
    statuses: Counter[int] = Counter()
    seen: Counter[str] = Counter()
    with caplog.at_level(logging.WARNING):
        await client.get("/")
        for _ in range(REQUESTS):
            if time.monotonic() > deadline:
                break
            statuses[await fuzzer.request(client)] += 1
        await _ws_round(client, fuzzer, FRAMES, deadline + 30, seen)
    server_errors = {status: n for status, n in statuses.items() if status >= 500}
    print(f"\nfuzz: {sum(statuses.values())} HTTP requests {dict(sorted(statuses.items()))}; "
          f"{sum(seen.values())} WebSocket frames {dict(seen)}; 5xx: {server_errors or 0}")
    assert not server_errors
    unhandled = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name in ("bot.app", "aiohttp.server",
                                                                                         "aiohttp.web_protocol")]
    assert not unhandled, [r.getMessage() for r in unhandled[:3]]
    assert sum(statuses.values()) >= min(REQUESTS, 100)  # the run was not cut short by a stall

    fresh = await aiohttp_client(create_app(runtime.settings, runtime))  # still serves a visitor
    await fresh.get("/")
    answer = await fresh.post("/api/chat/messages", json={"text": "你好"})
    assert answer.status == 200 and (await answer.json())["replies"]
