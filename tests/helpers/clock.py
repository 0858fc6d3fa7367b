"""Clocks for tests. Services take their time from an injected clock, so a test sets the moment
(``Clock``) instead of sleeping; only tests that race a real socket or a platform's token
bucket need real time moved forward (``OffsetClock``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# A Wednesday, 10:00 in Xiamen (Asia/Shanghai): inside working hours, so commissioners are on duty.
START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


class Clock:
    """A fixed moment that the test moves forward explicitly."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class OffsetClock:
    """Real time plus an offset the test moves forward: for code that also stamps rows or paces
    requests with real time (the outbox retries in the channel tests, WeCom's token bucket).
    ``mono()`` is a monotonic reading for rate limiters."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def wall(self) -> datetime:
        return self()

    def mono(self) -> float:
        return 1000.0 + self.offset.total_seconds()

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)
