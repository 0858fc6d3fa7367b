"""Loading: broken content raises KnowledgeBaseError, so it never replaces a working index."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from knowledge.entries import DOMAINS, load_entries
from knowledge.problems import KnowledgeBaseError
from knowledge.retriever import KnowledgeBase
from knowledge.synonyms import load_groups


def test_fixture_loads(fixtures: Path) -> None:
    kb = KnowledgeBase.load(fixtures / "valid")
    assert len(kb) == 2
    result = kb.search("外观专利保护多久")
    assert result.best is not None and result.best.entry.id == "ip.design-patent-term"


@pytest.mark.parametrize("name", ["bad_yaml", "missing_field", "duplicate_id", "bad_domain", "bad_date", "empty"])
def test_broken_directory_raises_with_problems(fixtures: Path, name: str) -> None:
    with pytest.raises(KnowledgeBaseError) as info:
        KnowledgeBase.load(fixtures / name)
    assert info.value.problems
    assert all(p.file for p in info.value.problems)
    assert "error" in str(info.value)


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError):
        KnowledgeBase.load(tmp_path / "nowhere")


def test_broken_synonyms_raise(fixtures: Path, tmp_path: Path) -> None:
    bad = tmp_path / "synonyms.yaml"
    bad.write_text("groups: [[only-one]]\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError):
        KnowledgeBase.load(fixtures / "valid", synonyms=bad)


def test_reload_keeps_the_working_index(fixtures: Path, tmp_path: Path) -> None:
    content = tmp_path / "entries"
    shutil.copytree(fixtures / "valid", content)
    current = KnowledgeBase.load(content)
    (content / "extra.yaml").write_text("- id: [broken\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError):
        current = KnowledgeBase.load(content)
    assert len(current) == 2
    assert current.search("外观专利保护多久").best is not None


def test_shipped_content_loads_and_covers_every_domain() -> None:
    entries = load_entries()
    assert len(entries) >= 250
    assert {e.domain for e in entries} == set(DOMAINS)
    assert all(e.questions and e.answer and e.basis for e in entries)


def test_shipped_synonyms_load() -> None:
    groups = load_groups()
    assert ["校准", "校验", "标定", "calibration"] in groups
