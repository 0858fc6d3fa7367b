"""The content rules: each problem kind is caught on its own small fixture directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.lint import check, is_traditional
from knowledge.problems import Problem

CASES = [
    ("missing_field", "error", "missing required field 'basis'"),
    ("duplicate_id", "error", "duplicate id"),
    ("few_questions", "error", "at least 4 are required"),
    ("no_traditional", "error", "no question phrasing in Traditional"),
    ("duplicate_phrasing", "error", "is identical (after normalisation)"),
    ("near_duplicate", "warning", "near-identical"),
    ("long_answer", "error", "the limit is 300"),
    ("bad_basis", "error", "basis names no"),
    ("bad_domain", "error", "domain 'cooking'"),
    ("bad_date", "error", "is not a date"),
    ("bad_yaml", "error", "cannot read YAML"),
    ("empty", "error", "no entries found"),
]


def test_valid_fixture_has_no_problems(fixtures: Path) -> None:
    assert check(fixtures / "valid") == []


@pytest.mark.parametrize(("name", "severity", "message"), CASES)
def test_each_problem_kind_is_caught(fixtures: Path, name: str, severity: str, message: str) -> None:
    problems = check(fixtures / name)
    matching = [p for p in problems if message in p.message]
    assert matching, problems
    assert all(p.severity == severity for p in matching)
    if severity == "warning":
        assert not [p for p in problems if p.severity == "error"]


def test_problems_name_file_and_entry(fixtures: Path) -> None:
    (problem,) = [p for p in check(fixtures / "long_answer") if p.severity == "error"]
    assert problem == Problem("entries.yaml", "metrology.scale-verification", "error", problem.message)
    assert str(problem).startswith("entries.yaml [metrology.scale-verification]: error:")


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    (problem,) = check(tmp_path / "nowhere")
    assert problem.severity == "error"


def test_traditional_detection_counts_traditional_only_characters() -> None:
    assert is_traditional("淨含量可以少多少才算合格？")
    assert is_traditional("外觀設計專利保護幾年")
    assert not is_traditional("外观设计专利保护几年")


def test_shipped_content_has_no_errors() -> None:
    errors = [p for p in check() if p.severity == "error"]
    assert errors == [], "\n".join(map(str, errors))


def test_shipped_content_cites_no_superseded_edition_today() -> None:
    """What `qibot kb check` runs in CI: the staleness checks against citations.yaml, on today's
    date, so an entry citing an edition whose replacement has come into force fails the build."""
    from knowledge.lint import run

    report = run()
    errors = [p for p in report.problems if p.severity == "error"]
    assert errors == [] and report.superseded == 0, "\n".join(map(str, errors))
