"""Prometheus metrics and the per-turn stage clock (README, "Metrics"; docs/operations.md).

Why a stage clock: a turn's cost is spread over layers (the channel's parsing and rendering, the
NLU, the knowledge search, the database, the handler's own work), and each layer is nested in
another (a handler searches the knowledge base and runs statements). :func:`stage` times a
block *exclusively*: time spent in a nested stage counts for that stage, not for its parent, so
the stages of a turn add up to the turn. The clock is carried by a context variable, so any layer
may mark a stage without knowing who measures (the database marks its statements through
SQLAlchemy's cursor events); outside a measured turn :func:`stage` costs a context lookup.

Each stage records wall time (what the histograms show) and CPU time of the thread (what
``bench/`` reports per turn; exact when turns run one at a time, as in the benchmarks).

With ``PROMETHEUS_MULTIPROC_DIR`` set (several ``qibot serve`` workers), prometheus-client keeps
the values in memory-mapped files there and ``/metrics`` of any worker adds up every worker's;
otherwise a plain in-process registry is used. The outbox backlog is not a process value: it is
read from the database when ``/metrics`` is scraped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

STAGES = ("channel", "nlu", "knowledge", "database", "handler")
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

TURNS = Counter("qibot_turns", "Turns (messages) handled, by channel and outcome "
                "(answered, duplicate, refused by a rate limit, failed in a handler, busy: database down)",
                ["channel", "outcome"])
TURN_SECONDS = Histogram("qibot_turn_seconds", "Server time of one turn, from request to response",
                         ["channel"], buckets=_BUCKETS)
STAGE_SECONDS = Histogram("qibot_turn_stage_seconds", "Time of one turn spent in each stage (exclusive)",
                          ["stage"], buckets=_BUCKETS)
STAGE_CPU = Counter("qibot_turn_stage_cpu_seconds", "CPU seconds of the serving thread while a turn was in each "
                    "stage (exact when turns do not overlap; under load it includes other turns' CPU while one "
                    "waited: an upper bound)", ["stage"])
NLU_RESULTS = Counter("qibot_nlu_results", "NLU results by act and outcome (answer: one reading; choices: "
                      "ambiguous between two domains, the user is asked)", ["act", "outcome"])
KNOWLEDGE_RESULTS = Counter("qibot_knowledge_results", "Knowledge base searches by outcome (answer, choices, none)",
                            ["outcome"])
WECHAT_REPLIES = Counter("qibot_wechat_replies", "WeChat answers: passive (in the callback's response) or "
                         "pushed (through the customer-service API, after the reply budget)", ["mode"])
DELIVERIES = Counter("qibot_outbox_deliveries", "Outbox delivery attempts by channel and result "
                     "(sent, held, retried, dead)", ["channel", "result"])
ADMISSION_WAIT = Histogram("qibot_turn_admission_wait_seconds", "Time a turn waited for its database slot "
                           "(SQLite: the single writer; PostgreSQL: the in-transaction limit below the pool)",
                           buckets=_BUCKETS)
POOL_WAIT = Histogram("qibot_db_pool_wait_seconds", "Time to get a connection from the database pool",
                      buckets=_BUCKETS)


class StageClock:
    """The stages of one turn: exclusive wall and CPU seconds per stage."""

    __slots__ = ("_stack", "channel", "cpu", "outcome", "wall")

    def __init__(self) -> None:
        self.wall: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.cpu: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        # [stage, wall start, cpu start, wall of children, cpu of children]
        self._stack: list[list[Any]] = []
        self.channel: str | None = None  # set by the engine: this scope contained a turn
        self.outcome = "answered"

    def enter(self, name: str) -> None:
        self._stack.append([name, time.perf_counter(), time.thread_time(), 0.0, 0.0])

    def leave(self, name: str) -> None:
        # Unwind to the stage being left (a statement that raised never saw its "after" event).
        while self._stack:
            entry = self._stack.pop()
            wall = time.perf_counter() - entry[1]
            cpu = time.thread_time() - entry[2]
            self.wall[entry[0]] += wall - entry[3]
            self.cpu[entry[0]] += cpu - entry[4]
            if self._stack:
                self._stack[-1][3] += wall
                self._stack[-1][4] += cpu
            if entry[0] == name:
                return

    @property
    def total_wall(self) -> float:
        return sum(self.wall.values())


_CURRENT: ContextVar[StageClock | None] = ContextVar("qibot_stage_clock", default=None)


def current() -> StageClock | None:
    return _CURRENT.get()


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as ``name`` in the current turn's clock (nothing outside a turn)."""
    clock = _CURRENT.get()
    if clock is None:
        yield
        return
    clock.enter(name)
    try:
        yield
    finally:
        clock.leave(name)


@contextmanager
def turn_scope(record: bool = True) -> Iterator[StageClock]:
    """Measure what runs inside as one turn's server time; what no inner stage claims is the
    channel's (parsing, rendering). Recorded to the histograms if a turn ran in it."""
    clock = StageClock()
    token = _CURRENT.set(clock)
    clock.enter("channel")
    try:
        yield clock
    finally:
        clock.leave("channel")
        _CURRENT.reset(token)
        if record and clock.channel is not None:
            observe(clock)


def observe(clock: StageClock) -> None:
    assert clock.channel is not None
    TURN_SECONDS.labels(clock.channel).observe(clock.total_wall)
    for name, seconds in clock.wall.items():
        STAGE_SECONDS.labels(name).observe(seconds)
        STAGE_CPU.labels(name).inc(max(clock.cpu[name], 0.0))


def turn(channel: str, outcome: str) -> None:
    """Count a turn; inside a :func:`turn_scope`, name the scope's channel and outcome."""
    TURNS.labels(channel, outcome).inc()
    clock = _CURRENT.get()
    if clock is not None:
        clock.channel, clock.outcome = channel, outcome


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Backlog(Collector):
    """The outbox backlog as read at scrape time: rows by channel and status."""

    def __init__(self, backlog: Mapping[tuple[str, str], int]) -> None:
        self.backlog = backlog

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("qibot_outbox_backlog", "Outbox rows not yet delivered, by channel and status "
                                   "(pending, sending, held)", labels=["channel", "status"])
        for (channel, status), count in sorted(self.backlog.items()):
            family.add_metric([channel, status], count)
        yield family


def exposition(backlog: Mapping[tuple[str, str], int]) -> bytes:
    """The text format for ``/metrics``: this process's (or, in multiprocess mode, every
    worker's) metrics and the backlog just read."""
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_Backlog(backlog))
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged) + generate_latest(extra)
    return generate_latest(REGISTRY) + generate_latest(extra)


def process_exited(pid: int) -> None:
    """Multiprocess mode: drop a stopped worker's live gauges (its counters stay summed)."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
