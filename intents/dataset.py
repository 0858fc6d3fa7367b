"""Training and held-out examples, loaded from the YAML files the team writes.

Files are validated on load because they are written by hand: a typo in a label would otherwise
silently create a class nobody handles. Errors name the file and the offending value.

Formats
-------
* ``data/train/<label>.yaml``: ``label: X``, ``kind: domain|act``, ``examples: [text, ...]``.
  A ``domain`` file holds inquiries with that domain (one of the 7 or ``out_of_scope``); an
  ``act`` file holds examples of a non-inquiry act.
* held-out / evaluation files: ``examples: [{text, act, domain}, ...]`` with ``domain`` null for
  non-inquiry acts. A training-format file is accepted too, so ``qibot nlu eval`` can score any file.
* ``data/lexicon.yaml``: ``domain: {term: label}``, ``act: {term: label}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from intents import yamlfile
from intents.labels import ACTS, INQUIRY, INQUIRY_DOMAINS

DATA_DIR = Path(__file__).parent / "data"
TRAIN_DIR = DATA_DIR / "train"
HELDOUT_FILE = DATA_DIR / "heldout.yaml"
#: Written blind by someone who saw only the domain descriptions and a list of situations: never
#: the training data, lexicon, entries or the other held-out set. Never trained or tuned on.
BLIND_FILE = DATA_DIR / "blind.yaml"
LEXICON_FILE = DATA_DIR / "lexicon.yaml"


class DatasetError(ValueError):
    """A data file is malformed; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled message. ``domain`` is set exactly when ``act`` is ``inquiry``."""

    text: str
    act: str
    domain: str | None
    source: str = field(default="", compare=False)

    @property
    def joint(self) -> str:
        """The single label of the joint act/domain space (``inquiry:metrology``, ``greeting``)."""
        return f"{INQUIRY}:{self.domain}" if self.act == INQUIRY else self.act


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Curated terms that signal one label unambiguously (already canonicalised by the loader's caller)."""

    domain: Mapping[str, str]
    act: Mapping[str, str]


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yamlfile.load(fh.read())
    except yaml.YAMLError as exc:
        raise DatasetError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc


def _check_example(path: Path, index: int, text: Any, act: Any, domain: Any) -> Example:
    where = f"{path}: example {index}"
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(f"{where}: text must be a non-empty string, got {text!r}")
    if act not in ACTS:
        raise DatasetError(f"{where}: unknown act {act!r} (known: {', '.join(ACTS)})")
    if act == INQUIRY:
        if domain not in INQUIRY_DOMAINS:
            raise DatasetError(
                f"{where}: unknown domain {domain!r} for an inquiry (known: {', '.join(INQUIRY_DOMAINS)})"
            )
    elif domain is not None:
        raise DatasetError(f"{where}: act {act!r} carries no domain, got domain {domain!r}")
    return Example(text=text, act=act, domain=domain, source=f"{path.name}#{index}")


def _training_file_examples(path: Path, doc: Mapping[str, Any]) -> list[Example]:
    label, kind, items = doc.get("label"), doc.get("kind"), doc.get("examples")
    if kind not in ("domain", "act"):
        raise DatasetError(f"{path}: kind must be 'domain' or 'act', got {kind!r}")
    if kind == "domain" and label not in INQUIRY_DOMAINS:
        raise DatasetError(f"{path}: unknown domain label {label!r} (known: {', '.join(INQUIRY_DOMAINS)})")
    if kind == "act" and (label not in ACTS or label == INQUIRY):
        known = ", ".join(a for a in ACTS if a != INQUIRY)
        raise DatasetError(f"{path}: unknown act label {label!r} (known: {known})")
    if not isinstance(items, list) or not items:
        raise DatasetError(f"{path}: 'examples' must be a non-empty list")
    act, domain = (INQUIRY, label) if kind == "domain" else (label, None)
    return [_check_example(path, i, text, act, domain) for i, text in enumerate(items, 1)]


def _labelled_file_examples(path: Path, items: Any) -> list[Example]:
    if not isinstance(items, list) or not items:
        raise DatasetError(f"{path}: 'examples' must be a non-empty list of {{text, act, domain}}")
    out: list[Example] = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            raise DatasetError(f"{path}: example {i} must be a mapping with text, act, domain; got {item!r}")
        out.append(_check_example(path, i, item.get("text"), item.get("act"), item.get("domain")))
    return out


def load_file(path: Path) -> list[Example]:
    """Examples of one file, in either the training or the labelled (held-out) format."""
    doc = _read_yaml(path)
    if not isinstance(doc, Mapping) or "examples" not in doc:
        raise DatasetError(f"{path}: expected a mapping with an 'examples' list")
    if "label" in doc or "kind" in doc:
        return _training_file_examples(path, doc)
    return _labelled_file_examples(path, doc["examples"])


def training_files(train_dir: Path = TRAIN_DIR) -> list[Path]:
    """The training files in a stable order (sorted by name), so training is deterministic."""
    return sorted(p for p in train_dir.glob("*.y*ml") if p.is_file())


def load_training(train_dir: Path = TRAIN_DIR) -> list[Example]:
    """All training examples. Raises :class:`DatasetError` when there are none or a file is bad."""
    files = training_files(train_dir)
    if not files:
        raise DatasetError(f"{train_dir}: no training files (*.yaml)")
    examples: list[Example] = []
    for path in files:
        examples.extend(load_file(path))
    return examples


def load_heldout(path: Path = HELDOUT_FILE) -> list[Example]:
    """The held-out evaluation examples (never used for training)."""
    return load_file(path)


def load_lexicon(path: Path = LEXICON_FILE) -> Lexicon:
    """The curated lexicon; a missing file is an empty lexicon (the model still works without it)."""
    if not path.exists():
        return Lexicon(domain={}, act={})
    doc = _read_yaml(path) or {}
    if not isinstance(doc, Mapping):
        raise DatasetError(f"{path}: expected a mapping with 'domain' and 'act'")
    return Lexicon(
        domain=_lexicon_section(path, doc.get("domain"), "domain", INQUIRY_DOMAINS),
        act=_lexicon_section(path, doc.get("act"), "act", tuple(a for a in ACTS if a != INQUIRY)),
    )


def _lexicon_section(path: Path, section: Any, name: str, known: Iterable[str]) -> dict[str, str]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise DatasetError(f"{path}: '{name}' must be a mapping of term → label")
    known = tuple(known)
    out: dict[str, str] = {}
    for term, label in section.items():
        if label not in known:
            raise DatasetError(f"{path}: {name} term {term!r} has unknown label {label!r}")
        if not isinstance(term, str | int | float) or not str(term).strip():
            raise DatasetError(f"{path}: {name} has an empty or non-text term {term!r}")
        out[str(term)] = str(label)
    return out
