"""Staying correct: cited editions against the registry, review_by dates, yearly re-checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from knowledge.citations import Citations, check_citations, find_editions, law_work, read_citations
from knowledge.entries import Entry, parse_entry
from knowledge.lint import check, run

TODAY = dt.date(2026, 12, 7)

REGISTRY = """
- identifier: GB 17167
  current: GB 17167-2025
  in_force: 2026-02-01
  replaced: [GB 17167-2006]
- identifier: GB 7718
  current: GB 7718-2025
  in_force: 2027-03-16
  replaced: [GB 7718-2011]
- identifier: GB/T 29186
  current: GB/T 29186.1~.6-2021
  replaced: [GB/T 29186-2012]
  uncertain: true
  note: the replacement relation is not confirmed
- identifier: ISO 9001
  current: ISO 9001:2015
  expected: [ISO 9001:2026]
- identifier: 《认证认可条例》
  current: 《中华人民共和国认证认可条例》（2023年修订）
  replaced: [《中华人民共和国认证认可条例》（2020年修订）]
"""


@pytest.fixture
def registry(tmp_path: Path) -> Citations:
    path = tmp_path / "citations.yaml"
    path.write_text(REGISTRY, encoding="utf-8")
    citations, problems = read_citations(path)
    assert problems == []
    return citations


def make_entry(answer: str = "按标准执行。", basis: str = "《中华人民共和国计量法》", **extra: Any) -> Entry:
    raw = {
        "id": "metrology.sample",
        "domain": "metrology",
        "title": "样例",
        "questions": ["样例问题一", "样例问题二", "样例问题三", "樣例問題"],
        "answer": answer,
        "basis": basis,
        "tags": ["样例"],
        "checked": "2026-11-01",
        **extra,
    }
    entry, problems = parse_entry(raw, "sample.yaml", TODAY)
    assert entry is not None, problems
    return entry


# --- the parser -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("GB 17167—2025《用能单位能源计量器具配备和管理通则》", ["gb17167@2025"]),
        ("ＧＢ／Ｔ　２９１８８－２０１２", ["gb/t29188@2012"]),
        ("GB/T19001－2016", ["gb/t19001@2016"]),
        ("ISO 9001:2015", ["iso9001@2015"]),
        ("ISO 14001：2026", ["iso14001@2026"]),
        ("ISO/IEC 17021-1:2015", ["iso17021-1@2015"]),
        ("gb / t 1.1 — 2020", ["gb/t1.1@2020"]),
        ("GB/T 29186.1～.6-2021", [f"gb/t29186.{i}@2021" for i in range(1, 7)]),
        ("GB/T 29186.1~29186.3—2021", [f"gb/t29186.{i}@2021" for i in range(1, 4)]),
        ("GB/T 29186.1-2021～GB/T 29186.4-2021", [f"gb/t29186.{i}@2021" for i in range(1, 5)]),
        ("GB/T 19001-2016/ISO 9001:2015", ["gb/t19001@2016", "iso9001@2015"]),
        ("《中华人民共和国标准化法》（1988年通过，2017年修订）", ["law:标准化法@2017"]),
        ("《认证认可条例》（2003年公布，2016年、2020年、2023年修订）", ["law:认证认可条例@2023"]),
        ("GB 17167《用能单位能源计量器具配备和管理通则》", []),  # undated: the edition in force
        ("《商标法》（1982年通过）", []),  # enactment, not a revision
    ],
)
def test_the_parser_reads_odd_spellings(text: str, keys: list[str]) -> None:
    assert [e.key for e in find_editions(text)] == keys


def test_messages_spell_editions_readably() -> None:
    assert [e.text for e in find_editions("gb/t29188－2012 and iso 14001：2015")] == [
        "GB/T 29188-2012",
        "ISO 14001:2015",
    ]


def test_a_law_is_one_work_with_or_without_the_state_prefix() -> None:
    assert law_work("《中华人民共和国计量法》") == law_work("《计量法》") == "law:计量法"


# --- the check ------------------------------------------------------------------------------------


def test_a_superseded_citation_fails(registry: Citations) -> None:
    entry = make_entry(basis="GB 17167-2006《用能单位能源计量器具配备和管理通则》")
    (problem,) = check_citations([entry], TODAY, registry)
    assert problem.severity == "error"
    assert "GB 17167-2006" in problem.message and "GB 17167-2025" in problem.message
    assert "2026-02-01" in problem.message


def test_the_same_citation_only_warns_before_the_replacement_is_in_force(registry: Citations) -> None:
    entry = make_entry(basis="GB 17167-2006")
    (problem,) = check_citations([entry], dt.date(2026, 1, 31), registry)
    assert problem.severity == "warning" and "replaces it from 2026-02-01" in problem.message


def test_a_replacement_published_but_not_in_force_warns(registry: Citations) -> None:
    entry = make_entry(answer="预包装食品标签按GB 7718—2011标注。", basis="GB 7718-2011")
    (problem,) = check_citations([entry], TODAY, registry)
    assert problem.severity == "warning"
    assert "GB 7718-2025 replaces it from 2027-03-16" in problem.message


def test_an_entry_explaining_the_change_passes_once_review_by_is_set(registry: Citations) -> None:
    answer = "GB 7718-2025将于2027年3月16日实施，此前仍执行GB 7718-2011。"
    (problem,) = check_citations([make_entry(answer=answer)], TODAY, registry)
    assert "set review_by to 2027-03-16" in problem.message
    assert check_citations([make_entry(answer=answer, review_by="2027-03-16")], TODAY, registry) == []


def test_naming_the_old_edition_as_history_passes(registry: Citations) -> None:
    entry = make_entry(answer="现行GB 17167-2025，2026年2月1日起实施，替代GB 17167-2006。", checked="2026-11-01")
    assert check_citations([entry], TODAY, registry) == []


def test_history_written_before_the_change_came_into_force_is_re_checked(registry: Citations) -> None:
    entry = make_entry(answer="GB 17167-2025将于2026年2月1日实施，替代GB 17167-2006。", checked="2025-12-01")
    (problem,) = check_citations([entry], TODAY, registry)
    assert problem.severity == "warning" and "re-check the wording" in problem.message


def test_an_uncertain_record_only_warns(registry: Citations) -> None:
    (problem,) = check_citations([make_entry(basis="GB/T 29186-2012")], TODAY, registry)
    assert problem.severity == "warning" and "uncertain" in problem.message


def test_a_superseded_law_revision_fails(registry: Citations) -> None:
    entry = make_entry(basis="《中华人民共和国认证认可条例》（2020年修订）第九条")
    (problem,) = check_citations([entry], TODAY, registry)
    assert problem.severity == "error"
    current = make_entry(basis="《中华人民共和国认证认可条例》（2023年修订）第九条")
    assert check_citations([current], TODAY, registry) == []


def test_an_expected_edition_may_be_mentioned(registry: Citations) -> None:
    entry = make_entry(answer="现行ISO 9001:2015，新版预计为ISO 9001:2026。")
    assert check_citations([entry], TODAY, registry) == []


def test_an_unlisted_dated_citation_warns(registry: Citations) -> None:
    (problem,) = check_citations([make_entry(basis="GB 2760-2024")], TODAY, registry)
    assert problem.severity == "warning" and "does not list" in problem.message


def test_questions_may_name_old_editions(registry: Citations) -> None:
    entry = make_entry(questions=["GB 17167-2006还能用吗", "样例问题二", "样例问题三", "樣例問題"])
    assert check_citations([entry], TODAY, registry) == []


# --- the registry file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("- identifier: GB 1\n  current: GB 1-2020\n  in_force: 2020-02-30\n", "is not a date"),
        ("- identifier: GB 1\n  current: GB 1\n", "names no dated edition"),
        ("- identifier: GB 2\n  current: GB 1-2020\n", "matches neither"),
        ("- identifier: GB 1\n  current: GB 1-2020\n  uncertain: true\n", "needs a note"),
        ("- identifier: GB 1\n  current: GB 1-2020\n  replaced: [GB 1-2020]\n", "both current and replaced"),
        ("- identifier: GB 1\n  current: GB 1-2020\n  colour: red\n", "unknown field"),
    ],
)
def test_a_bad_registry_record_is_refused(tmp_path: Path, record: str, message: str) -> None:
    path = tmp_path / "citations.yaml"
    path.write_text(record, encoding="utf-8")
    citations, problems = read_citations(path)
    assert citations.records == ()
    assert any(message in p.message and p.severity == "error" for p in problems), problems


def test_the_shipped_registry_is_valid_and_flags_the_known_replacements() -> None:
    citations, problems = read_citations()
    assert problems == []
    replaced = citations.replaced_by
    assert replaced["gb17167@2006"].current == "GB 17167-2025"
    assert replaced["gb/t29188@2012"].current == "GB/T 29188-2022"
    assert replaced["iso14001@2015"].current == "ISO 14001:2026"
    assert replaced["gb7718@2011"].in_force == dt.date(2027, 3, 16)
    old = make_entry(basis="GB 17167-2006；GB/T 29188-2012")
    assert [p.severity for p in check_citations([old], TODAY)] == ["error", "error"]


# --- freshness: review_by and the yearly re-check --------------------------------------------------


def _write_entries(directory: Path, **extra: str) -> None:
    fields = "".join(f"  {key}: {value}\n" for key, value in extra.items())
    directory.mkdir(exist_ok=True)
    (directory / "entries.yaml").write_text(
        "- id: metrology.sample\n  domain: metrology\n  title: 电子秤检定\n"
        "  questions: [电子秤要检定吗, 超市的秤多久检一次, 秤不准去哪里检, 菜市場的秤誰來檢定]\n"
        "  answer: 贸易结算用电子秤属于强制检定计量器具。\n  basis: 《中华人民共和国计量法》第九条\n"
        f"  tags: [检定]\n{fields}",
        encoding="utf-8",
    )


def test_review_by_passed_warns_and_names_what_to_watch(tmp_path: Path) -> None:
    _write_entries(tmp_path, checked="2026-11-01", review_by="2026-12-01", watch="计量法修订草案")
    report = run(tmp_path, TODAY)
    (problem,) = report.problems
    assert problem.severity == "warning"
    assert "review_by 2026-12-01 has passed" in problem.message and "计量法修订草案" in problem.message
    assert report.review_due == 1 and "1 past review_by" in report.summary()
    _write_entries(tmp_path, checked="2026-11-01", review_by="2027-01-01")
    assert check(tmp_path, TODAY) == []


def test_an_entry_not_checked_for_a_year_warns(tmp_path: Path) -> None:
    _write_entries(tmp_path, checked="2025-12-01")
    (problem,) = check(tmp_path, TODAY)
    assert problem.severity == "warning" and "more than a year ago" in problem.message
    _write_entries(tmp_path, checked="2025-12-08")
    assert check(tmp_path, TODAY) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"review_by": "2027-02-30"}, "review_by '2027-02-30' is not a date"),
        ({"review_by": None}, "review_by must be a date"),
        ({"watch": ""}, "watch must be a non-empty string"),
        ({"watch": ["a"]}, "watch must be a non-empty string"),
    ],
)
def test_bad_review_fields_are_refused(extra: dict[str, Any], message: str) -> None:
    raw = {
        "id": "metrology.sample", "domain": "metrology", "title": "t", "questions": ["q"], "answer": "a",
        "basis": "b", "tags": [], "checked": "2026-11-01", **extra,
    }
    entry, problems = parse_entry(raw, "f.yaml", TODAY)
    assert entry is None
    assert any(message in p.message for p in problems), problems


def test_the_summary_is_one_line(tmp_path: Path) -> None:
    _write_entries(tmp_path, checked="2026-11-01")
    summary = run(tmp_path, TODAY).summary()
    assert "\n" not in summary
    assert summary.startswith("0 error(s), 0 warning(s) in 1 entries; citations: 0 superseded")
