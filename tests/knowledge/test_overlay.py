"""Console edits laid over the content files: replaced, retired and new entries; the lint of one
edited entry against the rest; a service that never goes back to an older version of the edits."""

from __future__ import annotations

import dataclasses
import time

from bot.services.knowledge import KnowledgeService
from knowledge.entries import load_entries, parse_entry
from knowledge.lint import check_edit
from knowledge.overlay import apply_overlay, form_from_entry, raw_from_form, to_raw
from knowledge.retriever import KnowledgeBase
from tests.helpers.knowledge import own_knowledge


def test_an_overlay_replaces_retires_and_adds_entries_in_a_stable_order(kb: KnowledgeBase) -> None:
    first, second, third = kb.entries[:3]
    changed = dataclasses.replace(first, answer="改过的回答。")
    new = dataclasses.replace(third, id="metrology.zz-new", title="一个新条目")
    result = apply_overlay(kb.entries, {first.id: changed, second.id: None, new.id: new})
    assert result[0] is changed and second not in result and result[-1] is new
    assert len(result) == len(kb.entries)  # one retired, one added


def test_a_form_round_trips_to_the_same_entry(kb: KnowledgeBase) -> None:
    for entry in kb.entries[:50]:
        parsed, problems = parse_entry(raw_from_form(form_from_entry(entry)), entry.file)
        assert parsed == entry and not problems
        assert parse_entry(to_raw(entry), entry.file)[0] == entry


def test_the_lint_of_one_edit_finds_a_phrasing_shared_with_another_entry_quickly(kb: KnowledgeBase) -> None:
    entries = load_entries()
    mine, other = entries[0], entries[1]
    copied = dataclasses.replace(mine, questions=(*mine.questions, other.questions[0]))
    check_edit(mine, entries)  # the phrasing keys of the base, computed once
    started = time.perf_counter()
    problems = check_edit(copied, entries)
    assert time.perf_counter() - started < 0.5  # the whole-base check takes over a second
    assert [p.message for p in problems if p.severity == "error"] == [
        f"phrasing {other.questions[0]!r} is identical (after normalisation) to one of {other.id}"]
    assert check_edit(mine, entries) == []


def test_the_service_serves_a_newer_version_of_the_edits_only(knowledge: KnowledgeService) -> None:
    service = own_knowledge(knowledge)
    entry = service.kb.entries[0]
    assert service.apply(2, {entry.id: None}) and service.kb.get(entry.id) is None
    assert not service.apply(1, {})  # a late, older version changes nothing
    assert service.kb.get(entry.id) is None and service.version == 2
    service.reload()  # a reload of the files keeps the edits
    assert service.kb.get(entry.id) is None
