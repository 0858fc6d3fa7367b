"""Data files: labels valid, sizes as the issue requires, no held-out text in training."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from intents.dataset import (
    BLIND_FILE,
    HELDOUT_FILE,
    DatasetError,
    load_file,
    load_heldout,
    load_lexicon,
    load_training,
)
from intents.labels import ACTS, DOMAIN_NAMES_ZH, DOMAINS, INQUIRY, INQUIRY_DOMAINS, OUT_OF_SCOPE
from intents.normalize import normalize

LABELS_DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_label_ids() -> None:
    assert ACTS[0] == INQUIRY and len(ACTS) == 9
    assert DOMAINS == ("metrology", "standards", "testing", "certification", "quality", "ip", "branding")
    assert set(DOMAIN_NAMES_ZH) == {*DOMAINS, OUT_OF_SCOPE}


def test_label_ids_match_the_documented_table() -> None:
    """The ids are fixed by the domain model; the architecture document's table is what people
    read (and it comes from the domain model's own table), so the two must not drift."""
    doc = LABELS_DOC.read_text(encoding="utf-8")
    section = doc.split("## Labels (fixed ids)", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")}
    assert rows == {*ACTS, *DOMAINS, OUT_OF_SCOPE}
    for domain, name in DOMAIN_NAMES_ZH.items():
        assert f"| `{domain}` | {name} |" in section


def test_training_sizes_meet_the_issue() -> None:
    counts = Counter(e.domain if e.act == INQUIRY else e.act for e in load_training())
    for domain in DOMAINS:
        assert counts[domain] >= 80, domain
    assert counts[OUT_OF_SCOPE] >= 40
    for act in ACTS[1:]:
        assert counts[act] >= 30, act


@pytest.mark.parametrize("path", [HELDOUT_FILE, BLIND_FILE], ids=["heldout", "blind"])
def test_evaluation_sets_are_separate_and_cover_every_label(path: Path) -> None:
    training = load_training()
    heldout = load_heldout(path)
    train_texts = {normalize(e.text).text for e in training}
    shared = [e.text for e in heldout if normalize(e.text).text in train_texts]
    # Independent writers coincide on stock phrases ("你好", "转人工", "五星"); they must stay rare.
    assert len(shared) <= 0.1 * len(heldout), shared
    assert {e.act for e in heldout} == set(ACTS)
    assert {e.domain for e in heldout if e.act == INQUIRY} == set(INQUIRY_DOMAINS)


def test_evaluation_data_is_big_enough() -> None:
    """The two held-out sets together are at least a fifth of the training data; the blind one,
    written apart from everything else, is at least 600 messages (the issue's minimum)."""
    training = load_training()
    blind = load_heldout(BLIND_FILE)
    assert len(blind) >= 600
    assert len(load_heldout()) + len(blind) >= 0.2 * len(training)


def test_lexicon_labels_valid() -> None:
    lexicon = load_lexicon()
    assert lexicon.domain and lexicon.act
    assert set(lexicon.domain.values()) <= set(INQUIRY_DOMAINS)


def test_unknown_training_label_names_file_and_label(tmp_path: Path) -> None:
    bad = tmp_path / "metrolgy.yaml"
    bad.write_text("label: metrolgy\nkind: domain\nexamples:\n  - 压力表送检\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"metrolgy\.yaml.*'metrolgy'"):
        load_file(bad)


def test_unknown_heldout_act_names_file_and_label(tmp_path: Path) -> None:
    bad = tmp_path / "held.yaml"
    bad.write_text("examples:\n  - {text: 你好, act: greting, domain: null}\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"held\.yaml: example 1: unknown act 'greting'"):
        load_file(bad)


def test_domain_on_non_inquiry_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "held.yaml"
    bad.write_text("examples:\n  - {text: 你好, act: greeting, domain: testing}\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="carries no domain"):
        load_file(bad)


def test_broken_yaml_is_a_dataset_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("examples: [unclosed\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"x\.yaml: not valid YAML"):
        load_file(bad)
