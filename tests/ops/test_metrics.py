"""``/metrics`` over real HTTP (issue 16, observability): what a turn, the NLU, the knowledge base,
WeChat and the outbox add to it, who may read it, and the multiprocess mode that adds up the
workers. Counters are process-wide, so each test compares the values before and after."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot.app import create_app
from bot.notify.base import Delivery, Notification
from bot.runtime import Runtime
from bot.services import outbox
from bot.storage.db import transaction

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-metrics-token-0123"


@pytest.fixture
async def client(aiohttp_client: Any, runtime: Runtime) -> AsyncIterator[TestClient]:
    client: TestClient = await aiohttp_client(create_app(runtime.settings, runtime))
    assert (await client.get("/")).status == 200
    yield client


async def scrape(client: TestClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain")
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_web_chat_turn_is_counted_with_its_stages(client: TestClient) -> None:
    before = await scrape(client)
    response = await client.post("/api/chat/messages", json={"text": "电子秤需要强制检定吗", "id": "m1"})
    assert response.status == 200
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("qibot_turns_total", channel="webchat", outcome="answered") == 1
    assert delta("qibot_turn_seconds_count", channel="webchat") == 1
    stages = {s: delta("qibot_turn_stage_seconds_sum", stage=s) for s in ("channel", "nlu", "knowledge", "database",
                                                                          "handler")}
    assert all(delta("qibot_turn_stage_seconds_count", stage=s) == 1 for s in stages)
    assert all(seconds > 0 for seconds in stages.values()), stages
    # Exclusive stages: they add up to the turn's time.
    assert sum(stages.values()) == pytest.approx(delta("qibot_turn_seconds_sum", channel="webchat"), rel=1e-6)
    assert sum(delta("qibot_nlu_results_total", act="inquiry", outcome=o) for o in ("answer", "choices")) == 1
    assert sum(delta("qibot_knowledge_results_total", outcome=o) for o in ("answer", "choices", "none")) >= 1
    assert delta("qibot_turn_admission_wait_seconds_count") == 1


async def test_duplicates_and_refusals_are_counted_as_such(client: TestClient, runtime: Runtime) -> None:
    before = await scrape(client)
    for _ in range(2):
        await client.post("/api/chat/messages", json={"text": "你好", "id": "same"})
    after = await scrape(client)
    assert value(after, "qibot_turns_total", channel="webchat", outcome="duplicate") - value(
        before, "qibot_turns_total", channel="webchat", outcome="duplicate") == 1


async def test_outbox_backlog_and_deliveries_by_channel_and_result(client: TestClient, runtime: Runtime) -> None:
    class Flaky:
        channel = "ops-test"
        failures = 1

        async def deliver(self, notification: Notification) -> Delivery:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("platform down")
            return Delivery.SENT

    runtime.dispatcher.register(Flaky())
    before = await scrape(client)
    async with transaction(runtime.sessions) as session:
        for n in range(3):
            await outbox.enqueue(session, channel="ops-test", recipient=f"r{n}", kind="test", payload={"text": "x"},
                                 now=runtime.now())
    waiting = await scrape(client)
    assert value(waiting, "qibot_outbox_backlog", channel="ops-test", status="pending") == 3
    await runtime.dispatcher.run_once()
    after = await scrape(client)
    assert value(after, "qibot_outbox_backlog", channel="ops-test", status="pending") == 1  # the retry
    assert value(after, "qibot_outbox_deliveries_total", channel="ops-test", result="sent") - value(
        before, "qibot_outbox_deliveries_total", channel="ops-test", result="sent") == 2
    assert value(after, "qibot_outbox_deliveries_total", channel="ops-test", result="retried") - value(
        before, "qibot_outbox_deliveries_total", channel="ops-test", result="retried") == 1


async def test_metrics_are_only_for_the_allowed_addresses_or_the_token(
    aiohttp_client: Any, runtime: Runtime
) -> None:
    local = await aiohttp_client(create_app(runtime.settings, runtime))
    assert (await local.get("/metrics")).status == 200  # loopback, the default
    # Forwarded by a proxy nobody declared trusted (nginx on this host): the client is unknown.
    assert (await local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})).status == 403

    settings = dataclasses.replace(runtime.settings, metrics_allow="10.0.0.0/8", metrics_token=TOKEN,
                                   trusted_proxies="127.0.0.1")
    guarded = await aiohttp_client(create_app(settings, runtime))
    assert (await guarded.get("/metrics")).status == 403
    assert (await guarded.get("/metrics", headers={"Authorization": "Bearer wrong-token-wrong-token"})).status == 403
    assert (await guarded.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200
    # Through the trusted proxy, the forwarded client is the one judged.
    assert (await guarded.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"})).status == 200
    assert (await guarded.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})).status == 403


def test_multiprocess_mode_adds_up_the_workers(tmp_path: Path) -> None:
    """Two worker processes count turns; a third reads /metrics' text: the sum of both."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = ("from bot import metrics\n"
              "for _ in range({n}): metrics.turn('webchat', 'answered')\n"
              "metrics.STAGE_SECONDS.labels('nlu').observe(0.002)\n")
    for n in (2, 3):
        subprocess.run([sys.executable, "-c", worker.format(n=n)], env=env, check=True, cwd=ROOT, timeout=60)
    reader = ("from bot import metrics\n"
              "import sys; sys.stdout.write(metrics.exposition({('wechat', 'pending'): 4}).decode())\n")
    text = subprocess.run([sys.executable, "-c", reader], env=env, check=True, cwd=ROOT, capture_output=True,
                          text=True, timeout=60).stdout
    samples = {(s.name, json.dumps(s.labels, sort_keys=True)): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("qibot_turns_total", json.dumps({"channel": "webchat", "outcome": "answered"}))] == 5
    assert samples[("qibot_turn_stage_seconds_count", json.dumps({"stage": "nlu"}))] == 2
    assert samples[("qibot_outbox_backlog", json.dumps({"channel": "wechat", "status": "pending"}))] == 4
