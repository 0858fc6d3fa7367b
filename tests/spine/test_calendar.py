"""The working calendar: an installed file adds a year's holidays without a release, a bad one
stops the start with the file and the value named, and ``qibot calendar check`` says what is covered."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from bot.services.calendar import CALENDAR_FILE, CalendarError, WorkingCalendar, installed_calendar_file
from bot.services.policy import ServicePolicy
from tests.helpers.cli import invoke

# Made-up dates for tests: real 2027 holidays are installed by operators once published.
INSTALLED = """
holidays:
  - 2027-01-01
  - 2027-10-01
workdays:
  - 2027-10-09
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_bundled_calendar_alone_covers_only_its_years() -> None:
    calendar = WorkingCalendar.load()
    assert calendar.covers(2026) and not calendar.covers(2027)
    assert calendar.coverage is not None and calendar.coverage.installed is None


def test_an_installed_file_is_merged_over_the_bundled_one(tmp_path: Path) -> None:
    calendar = WorkingCalendar.load(installed=write(tmp_path / "calendar.yaml", INSTALLED))
    assert calendar.covers(2026) and calendar.covers(2027)
    assert not calendar.is_working_day(date(2027, 10, 1))  # a Friday, installed holiday
    assert calendar.is_working_day(date(2027, 10, 9))  # a Saturday, installed make-up workday
    assert not calendar.is_working_day(date(2026, 10, 1))  # bundled holidays are kept
    assert calendar.hours == WorkingCalendar.load().hours  # keys the file does not set are bundled
    assert calendar.coverage is not None
    assert calendar.coverage.bundled_years == (2026,) and calendar.coverage.installed_years == (2027,)
    installed = tmp_path / "calendar.yaml"
    assert calendar.coverage.describe() == f"holidays for 2026 (bundled), 2027 (installed: {installed})"


def test_an_installed_year_replaces_the_bundled_dates_of_that_year(tmp_path: Path) -> None:
    calendar = WorkingCalendar.load(installed=write(tmp_path / "calendar.yaml", "holidays: [2026-12-31]\n"))
    assert not calendar.is_working_day(date(2026, 12, 31))
    assert calendar.is_working_day(date(2026, 10, 5))  # a Monday the bundled file lists as a holiday
    assert not calendar.is_working_day(date(2026, 10, 10))  # a Saturday the bundled file lists as a workday
    assert not WorkingCalendar.load().is_working_day(date(2026, 10, 5))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("holidays:\n  - 2027-01-01\n  - 2027-02-30\n", "holidays[1]: '2027-02-30' is not a date"),
        ("holidays: 2027-01-01\n", "holidays: must be a list of dates"),
        ("workdays:\n  - next saturday\n", "workdays[0]: 'next saturday' is not a date"),
        ("holidays: [2027-01-01]\nworkdays: [2027-01-01]\n", "2027-01-01 is listed both as a holiday"),
        ("holiday: [2027-01-01]\n", "unknown key(s) 'holiday'"),
        ("hours: [['14:00', '09:00']]\n", "must end after it starts"),
        ("hours: [['8h30', '12:00']]\n", "is not two times HH:MM"),
        ("weekdays: [1, 7]\n", "outside 0 (Monday)"),
        ("timezone: Mars/Olympus\n", "'Mars/Olympus' is not a time zone"),
        ("holidays: [2027-01-01\n", "not valid YAML"),
        ("- 2027-01-01\n", "must be a mapping"),
    ],
)
def test_a_bad_installed_file_is_refused_with_file_and_value(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "calendar.yaml", text)
    with pytest.raises(CalendarError) as caught:
        WorkingCalendar.load(installed=path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert isinstance(caught.value, ConfigError)  # the CLI reports it as a configuration error, exit 2


def test_the_settings_choose_the_installed_file(tmp_path: Path) -> None:
    settings = load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path)})
    assert installed_calendar_file(settings) is None
    in_data_dir = write(tmp_path / "calendar.yaml", INSTALLED)
    assert installed_calendar_file(settings) == in_data_dir
    elsewhere = write(tmp_path / "holidays-2027.yaml", INSTALLED)
    settings = load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path), "QIBOT_CALENDAR_FILE": str(elsewhere)})
    assert installed_calendar_file(settings) == elsewhere
    assert ServicePolicy.from_settings(settings).calendar.covers(2027)


def test_a_missing_calendar_file_setting_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="QIBOT_CALENDAR_FILE"):
        load_settings(environ={"QIBOT_CALENDAR_FILE": str(tmp_path / "nowhere.yaml")})


def test_a_bad_installed_file_stops_the_service_policy(tmp_path: Path) -> None:
    write(tmp_path / "calendar.yaml", "holidays: [2027-13-01]\n")
    with pytest.raises(CalendarError, match="2027-13-01"):
        ServicePolicy.from_settings(load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path)}))


# --- the command line -----------------------------------------------------------------------------


def test_calendar_check_lists_covered_years_and_fails_for_a_missing_one(tmp_path: Path) -> None:
    result = invoke(["calendar", "check", "--year", "2026"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"bundled:   {CALENDAR_FILE}: 2026" in result.stdout
    assert "installed: none" in result.stdout
    assert "covered years: 2026\n" in result.stdout

    result = invoke(["calendar", "check", "--year", "2027"], tmp_path)
    assert result.returncode == 1
    assert "2027: NO public holidays listed" in result.stdout
    assert str(tmp_path / "calendar.yaml") in result.stdout  # where to put them

    installed = write(tmp_path / "calendar.yaml", INSTALLED)
    result = invoke(["calendar", "check", "--year", "2027"], tmp_path)
    assert result.returncode == 0, result.stdout
    assert f"installed: {installed}: 2027" in result.stdout
    assert "covered years: 2026, 2027" in result.stdout


def test_calendar_check_refuses_a_bad_file_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path / "calendar.yaml", "holidays: [2027-02-30]\n")
    result = invoke(["calendar", "check"], tmp_path)
    assert result.returncode == 2
    assert str(path) in result.stderr and "'2027-02-30' is not a date" in result.stderr


def test_kb_check_prints_calendar_years_and_a_one_line_summary(tmp_path: Path) -> None:
    write(tmp_path / "calendar.yaml", INSTALLED)
    result = invoke(["kb", "check"], tmp_path)
    lines = result.stdout.splitlines()
    assert lines[-2] == f"working calendar: holidays for 2026 (bundled), 2027 (installed: {tmp_path / 'calendar.yaml'})"
    assert " error(s), " in lines[-1] and "superseded" in lines[-1] and "past review_by" in lines[-1]
