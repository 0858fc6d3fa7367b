"""Standard and regulation codes are single tokens, matched exactly across spellings."""

from __future__ import annotations

import datetime as dt

import pytest

from intents.normalize import normalize
from knowledge.codes import canonicalize, find_codes
from knowledge.entries import Entry
from knowledge.retriever import KnowledgeBase


def codes(text: str) -> list[tuple[str, str | None]]:
    return [(c.base, c.year) for c in find_codes(normalize(text).text)]


@pytest.mark.parametrize(
    ("text", "base", "year"),
    [
        ("GB/T 19001-2016", "gb/t19001", "2016"),
        ("GB/T 19001—2016", "gb/t19001", "2016"),
        ("GB/T19001-2016", "gb/t19001", "2016"),
        ("GB/T19001", "gb/t19001", None),
        ("gb t 19001", "gb/t19001", None),
        ("GBT19001", "gb/t19001", None),
        ("ＧＢ／Ｔ　１９００１－２０１６", "gb/t19001", "2016"),
        ("GB 2760—2014", "gb2760", "2014"),
        ("GB 4943.1-2022", "gb4943.1", "2022"),
        ("GB/Z 20000", "gb/z20000", None),
        ("JJG 1036-2008", "jjg1036", "2008"),
        ("JJF 1070", "jjf1070", None),
        ("CNAS-CL01", "cnas-cl01", None),
        ("CNAS CL01", "cnas-cl01", None),
        ("cnas-cl01:2018", "cnas-cl01", "2018"),
        ("CNAS-CL01-A001", "cnas-cl01-a001", None),
        ("RB/T 214-2017", "rb/t214", "2017"),
        ("ISO 9001:2015", "iso9001", "2015"),
        ("ISO9001", "iso9001", None),
        ("ISO/IEC 17025", "iso17025", None),
        ("ISO 17025:2017", "iso17025", "2017"),
        ("IATF 16949", "iatf16949", None),
        ("DB35/T 1234-2020", "db35/t1234", "2020"),
        ("DB 35/T 1234", "db35/t1234", None),
        ("T/CAQ 10201", "t/caq10201", None),
        ("YY/T 0287-2017", "yy/t0287", "2017"),
        ("QB/T 1234", "qb/t1234", None),
        ("标准号GB/T 2828.1—2012怎么查", "gb/t2828.1", "2012"),
    ],
)
def test_code_variants_are_one_canonical_token(text: str, base: str, year: str | None) -> None:
    assert codes(text) == [(base, year)]


@pytest.mark.parametrize("text", ["我有3个问题", "2016年出台的", "QC小组怎么搞", "ISO认证贵吗", "电话12315", "3C认证"])
def test_no_code_where_there_is_none(text: str) -> None:
    assert codes(text) == []


def test_gb_without_t_still_finds_the_family() -> None:
    (loose,) = find_codes("gb 19001")
    (strict,) = find_codes("gb/t 19001")
    assert loose.loose == strict.loose == "gb~19001"


def test_canonical_spelling_for_fuzzy_matching() -> None:
    assert canonicalize(normalize("GB/T 19001—2016质量管理体系").text) == "gb/t19001-2016 质量管理体系"


@pytest.mark.parametrize(
    "variants",
    [
        ("GB/T19001-2016", "GB/T 19001—2016", "gb/t 19001 2016", "ＧＢ／Ｔ１９００１－２０１６", "GBT19001-2016"),
        ("GB/T19001", "gb t 19001", "GBT 19001", "GB/T 19001"),
        ("CNAS-CL01", "CNAS CL01", "cnas-cl01"),
    ],
)
def test_code_variants_retrieve_the_same_entry(kb: KnowledgeBase, variants: tuple[str, ...]) -> None:
    best = {q: kb.search(q).best for q in variants}
    ids = {hit.entry.id if hit else None for hit in best.values()}
    assert len(ids) == 1 and None not in ids, best
    (entry_id,) = ids
    entry = kb.get(entry_id)
    assert entry is not None
    number = "".join(ch for ch in variants[0].split("-")[0] if ch.isdigit())
    assert any(number in p.replace(" ", "") for p in (*entry.phrasings, *entry.tags, entry.answer))


@pytest.mark.parametrize("query", ["JJG 1036-2008", "RB/T 214-2017", "CNAS-CL01", "ISO 9001"])
def test_code_queries_answer_with_an_entry_naming_the_code(kb: KnowledgeBase, query: str) -> None:
    result = kb.search(query)
    assert result.best is not None
    number = "".join(ch for ch in query.split("-")[0].split(":")[0] if ch.isdigit())
    text = " ".join((*result.best.entry.phrasings, *result.best.entry.tags, result.best.entry.answer))
    assert number in text.replace(" ", "")


def _entry(entry_id: str, code: str) -> Entry:
    return Entry(
        id=entry_id,
        domain="standards",
        title=f"{code}的要求",
        questions=(f"{code}讲什么", f"{code}哪里能看", f"{code}是强制的吗", f"{code}適用範圍"),
        answer="示例。",
        detail=None,
        basis=f"{code}",
        tags=(),
        checked=dt.date(2026, 1, 1),
    )


def test_year_is_preferred_but_not_required() -> None:
    kb = KnowledgeBase.from_entries([_entry("standards.old", "GB 2760-2011"), _entry("standards.new", "GB 2760-2014")])
    assert kb.rank("GB 2760—2014讲什么").indices.size
    first = kb.entries[int(kb.rank("GB 2760—2014讲什么").indices[0])].id
    assert first == "standards.new"
    first = kb.entries[int(kb.rank("gb2760-2011讲什么").indices[0])].id
    assert first == "standards.old"
    undated = kb.rank("GB 2760讲什么")
    assert {kb.entries[int(i)].id for i in undated.indices[:2]} == {"standards.old", "standards.new"}
