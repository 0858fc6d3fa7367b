"""The working calendar: when commissioners work, so escalation deadlines count working hours
and the bot can say honestly when to expect an answer.

Public holidays are published once a year (the State Council notice, usually in November), long
after a release ships, so the calendar has two layers: the bundled ``bot/data/calendar.yaml``
and an optional installed file (``QIBOT_CALENDAR_FILE``, else ``<QIBOT_DATA_DIR>/calendar.yaml``)
merged over it. An operator adds next year's holidays by writing that file; no release needed.
Both files are validated strictly at start: a typo in a holiday date would silently make a
holiday a working day, so a bad value stops the process with the file and the value named.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bot.config import ConfigError, Settings
from intents import yamlfile
from intents.yamlfile import TextDateLoader

log = logging.getLogger(__name__)
CALENDAR_FILE = Path(__file__).resolve().parent.parent / "data" / "calendar.yaml"
INSTALLED_NAME = "calendar.yaml"  # looked for in the data directory
_KEYS = ("timezone", "hours", "weekdays", "holidays", "workdays")
_Complaint = Callable[[str], "CalendarError"]  # builds the error for one file from a message


class CalendarError(ConfigError):
    """A calendar file is missing or invalid; the message names the file and the bad value."""




def _parse_time(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


@dataclass(frozen=True)
class _Layer:
    """One validated calendar file; a key the file does not set is None."""

    path: Path
    timezone: ZoneInfo | None
    hours: tuple[tuple[time, time], ...] | None
    weekdays: frozenset[int] | None
    holidays: frozenset[date]
    workdays: frozenset[date]

    @property
    def years(self) -> frozenset[int]:
        """The years this file speaks for: it lists holidays or make-up workdays in them."""
        return frozenset(d.year for d in (*self.holidays, *self.workdays))


def _read_layer(path: Path, *, require_hours: bool) -> _Layer:
    def bad(message: str) -> CalendarError:
        return CalendarError(f"{path}: {message}")

    try:
        data = yamlfile.read(path, TextDateLoader)
    except FileNotFoundError:
        raise bad("file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise bad(f"cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise bad(f"not valid YAML: {exc}".replace("\n", " ")) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise bad(f"must be a mapping with keys {', '.join(_KEYS)}, got {type(data).__name__}")
    unknown = [str(k) for k in data if k not in _KEYS]
    if unknown:
        raise bad(f"unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(_KEYS)}")

    timezone = None
    if data.get("timezone") is not None:
        try:
            timezone = ZoneInfo(str(data["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise bad(f"timezone: {data['timezone']!r} is not a time zone name such as Asia/Shanghai") from None

    hours = None
    if data.get("hours") is not None:
        hours = _hours(data["hours"], bad)
    elif require_hours:
        raise bad("hours: missing (a list of [start, end] pairs such as ['08:30', '12:00'])")

    weekdays = None
    if data.get("weekdays") is not None:
        raw = data["weekdays"]
        if not isinstance(raw, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in raw):
            raise bad(f"weekdays: {raw!r} is not a list of day numbers (0 = Monday .. 6 = Sunday)")
        if not all(0 <= d <= 6 for d in raw):
            raise bad(f"weekdays: {raw!r} has a day outside 0 (Monday) .. 6 (Sunday)")
        weekdays = frozenset(raw)

    holidays = _dates(data.get("holidays"), "holidays", bad)
    workdays = _dates(data.get("workdays"), "workdays", bad)
    both = sorted(holidays & workdays)
    if both:
        raise bad(f"{both[0].isoformat()} is listed both as a holiday and as a make-up workday")
    return _Layer(path, timezone, hours, weekdays, holidays, workdays)


def _hours(raw: Any, bad: _Complaint) -> tuple[tuple[time, time], ...]:
    if not isinstance(raw, list) or not raw:
        raise bad(f"hours: {raw!r} is not a non-empty list of [start, end] pairs")
    periods: list[tuple[time, time]] = []
    for index, pair in enumerate(raw):
        if not isinstance(pair, list) or len(pair) != 2:
            raise bad(f"hours[{index}]: {pair!r} is not a [start, end] pair")
        try:
            start, end = _parse_time(str(pair[0])), _parse_time(str(pair[1]))
        except ValueError:
            raise bad(f"hours[{index}]: {pair!r} is not two times HH:MM") from None
        if start >= end:
            raise bad(f"hours[{index}]: {pair!r}: every working period must end after it starts")
        periods.append((start, end))
    return tuple(periods)


def _dates(raw: Any, key: str, bad: _Complaint) -> frozenset[date]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        raise bad(f"{key}: must be a list of dates (YYYY-MM-DD), got {type(raw).__name__}")
    days: set[date] = set()
    for index, value in enumerate(raw):
        try:
            days.add(date.fromisoformat(str(value).strip()))
        except ValueError:
            raise bad(f"{key}[{index}]: {value!r} is not a date (YYYY-MM-DD)") from None
    return frozenset(days)


def _merge(base: frozenset[date], over: frozenset[date], years: frozenset[int]) -> frozenset[date]:
    """The installed file speaks for whole years: for those, its dates replace the bundled ones
    (so it can also correct a bundled year), other years keep the bundled dates."""
    return frozenset(d for d in base if d.year not in years) | over


def installed_calendar_file(settings: Settings) -> Path | None:
    """The operator's calendar file: QIBOT_CALENDAR_FILE, else calendar.yaml in the data
    directory when it exists, else None (only the bundled calendar)."""
    if settings.calendar_file is not None:
        return settings.calendar_file
    candidate = settings.data_dir / INSTALLED_NAME
    return candidate if candidate.is_file() else None


@dataclass(frozen=True)
class Coverage:
    """Which file lists public holidays for which years, for ``qibot calendar check``."""

    bundled: Path
    bundled_years: tuple[int, ...]
    installed: Path | None
    installed_years: tuple[int, ...]

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(sorted({*self.bundled_years, *self.installed_years}))

    def describe(self) -> str:
        """One line: ``holidays for 2026 (bundled), 2027 (installed: /srv/qibot/calendar.yaml)``."""
        parts = []
        for year in self.years:
            source = f"installed: {self.installed}" if year in self.installed_years else "bundled"
            parts.append(f"{year} ({source})")
        return "holidays for " + (", ".join(parts) if parts else "no year")


def _years_with_holidays(days: Iterable[date]) -> tuple[int, ...]:
    return tuple(sorted({d.year for d in days}))


@dataclass(frozen=True)
class WorkingCalendar:
    tz: ZoneInfo
    hours: tuple[tuple[time, time], ...]
    weekdays: frozenset[int]
    holidays: frozenset[date]
    workdays: frozenset[date]
    coverage: Coverage | None = None

    @classmethod
    def load(cls, path: Path = CALENDAR_FILE, installed: Path | None = None) -> WorkingCalendar:
        """The bundled calendar at ``path`` with the ``installed`` file (if any) merged over it;
        raises ``CalendarError`` naming the file and the bad value."""
        base = _read_layer(path, require_hours=True)
        over = _read_layer(installed, require_hours=False) if installed is not None else None
        holidays, workdays = base.holidays, base.workdays
        tz, hours, weekdays = base.timezone, base.hours, base.weekdays
        if over is not None:
            holidays = _merge(holidays, over.holidays, over.years)
            workdays = _merge(workdays, over.workdays, over.years)
            tz, hours, weekdays = over.timezone or tz, over.hours or hours, over.weekdays or weekdays
        assert hours is not None
        coverage = Coverage(
            bundled=path,
            bundled_years=_years_with_holidays(d for d in base.holidays if over is None or d.year not in over.years),
            installed=installed,
            installed_years=_years_with_holidays(over.holidays) if over is not None else (),
        )
        return cls(
            tz=tz or ZoneInfo("Asia/Shanghai"),
            hours=hours,
            weekdays=weekdays if weekdays is not None else frozenset(range(5)),
            holidays=holidays,
            workdays=workdays,
            coverage=coverage,
        )

    @classmethod
    def for_settings(cls, settings: Settings) -> WorkingCalendar:
        """The calendar a deployment runs with: bundled, plus its installed file."""
        return cls.load(CALENDAR_FILE, installed_calendar_file(settings))

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

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The end of the ``days``-th working day after the day of ``start`` (a case opened on a
        Friday with 5 working days is due at the close of the next Friday, holidays skipped)."""
        day = start.astimezone(self.tz).date()
        counted = 0
        for _ in range(days * 7 + 400):
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
                if counted >= days:
                    return datetime.combine(day, self.hours[-1][1], self.tz)
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
