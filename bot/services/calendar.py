"""The working calendar: when commissioners work, so escalation deadlines count working hours
and the bot can say honestly when to expect an answer. Data in ``bot/data/calendar.yaml``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

log = logging.getLogger(__name__)
CALENDAR_FILE = Path(__file__).resolve().parent.parent / "data" / "calendar.yaml"


def _parse_time(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


@dataclass(frozen=True)
class WorkingCalendar:
    tz: ZoneInfo
    hours: tuple[tuple[time, time], ...]
    weekdays: frozenset[int]
    holidays: frozenset[date]
    workdays: frozenset[date]

    @classmethod
    def load(cls, path: Path = CALENDAR_FILE) -> WorkingCalendar:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        hours = tuple((_parse_time(a), _parse_time(b)) for a, b in data["hours"])
        if any(start >= end for start, end in hours):
            raise ValueError(f"{path}: every working period must end after it starts")
        calendar = cls(
            tz=ZoneInfo(data.get("timezone", "Asia/Shanghai")),
            hours=hours,
            weekdays=frozenset(int(d) for d in data.get("weekdays", [0, 1, 2, 3, 4])),
            holidays=frozenset(data.get("holidays") or ()),
            workdays=frozenset(data.get("workdays") or ()),
        )
        return calendar

    def covers(self, year: int) -> bool:
        """Whether public holidays are listed for ``year`` (they are published yearly)."""
        return any(d.year == year for d in self.holidays)

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def _periods(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.is_working_day(day):
            return []
        return [
            (datetime.combine(day, start, self.tz), datetime.combine(day, end, self.tz)) for start, end in self.hours
        ]

    def is_working_time(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        return any(start <= local < end for start, end in self._periods(local.date()))

    def next_working_time(self, moment: datetime) -> datetime:
        """The moment itself if it is working time, otherwise the start of the next period."""
        local = moment.astimezone(self.tz)
        for offset in range(60):
            for start, end in self._periods(local.date() + timedelta(days=offset)):
                if local < end:
                    return max(start, local)
        raise ValueError("no working time in the next 60 days; check the calendar file")

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment when ``hours`` working hours have passed since ``start``."""
        remaining = timedelta(hours=hours)
        local = start.astimezone(self.tz)
        for offset in range(400):
            for period_start, period_end in self._periods(local.date() + timedelta(days=offset)):
                if period_end <= local:
                    continue
                begin = max(period_start, local)
                available = period_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        raise ValueError("deadline beyond 400 days; check the calendar file")

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        if end <= start:
            return 0.0
        total = timedelta()
        local_start, local_end = start.astimezone(self.tz), end.astimezone(self.tz)
        day = local_start.date()
        while day <= local_end.date():
            for period_start, period_end in self._periods(day):
                overlap = min(period_end, local_end) - max(period_start, local_start)
                if overlap > timedelta():
                    total += overlap
            day += timedelta(days=1)
        return total.total_seconds() / 3600
