"""The analysed form of the knowledge base's own texts, computed once instead of at every start.

Building the index analyses every phrasing, tag and answer (normalisation, codes, jieba,
synonyms): some 8,500 texts and 2–3 s on a small machine, at every start and reload, for texts
that rarely change. Analysis is a pure function of the text, the synonym groups and the code and
data below, so its result can be kept:

* a **shipped** memo (``knowledge/data/analysis.npz``, built with ``qibot kb build``; a test fails
  while it is stale) covers the bundled content;
* a **cache** bundle in the data directory (a :class:`~intents.cache.SignedStore`: only files this
  service signed are read) covers texts edited or added since, and a deployment's own content.

Both are addressed by :func:`memo_key`, a hash over everything the analysis depends on; a memo
with another key is never consulted, so a stale or foreign memo costs time, never correctness.
Within a memo, entries are looked up by the exact raw text, so an edited text is analysed afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from sys import intern

import numpy as np

from intents.cache import SignedStore
from intents.normalize import USER_DICT, VARIANTS_FILE
from knowledge.analysis import Analyzed, Analyzer, raw_terms
from knowledge.english import ENGLISH_FILE
from knowledge.synonyms import Synonyms, build

log = logging.getLogger(__name__)

SHIPPED_MEMO = Path(__file__).parent / "data" / "analysis.npz"
_KNOWLEDGE = Path(__file__).parent
_INTENTS = Path(__file__).parent.parent / "intents"
#: The code an analysis depends on: a change to one of these files invalidates every memo.
ANALYSIS_CODE = (
    _KNOWLEDGE / "analysis.py",
    _KNOWLEDGE / "english.py",
    _KNOWLEDGE / "codes.py",
    _KNOWLEDGE / "synonyms.py",
    _KNOWLEDGE / "memo.py",
    _INTENTS / "normalize.py",
)
_LIBRARIES = ("jieba", "opencc")  # the segmenter (and its dictionary) and the script converter
_BUNDLE = "kb-analysis-"
_FORMAT = 2


def memo_key(groups: Sequence[Sequence[str]]) -> str:
    """Hash of everything an analysis depends on: code, data files, libraries, synonym groups."""
    h = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        h.update(label.encode() + b"\0" + len(data).to_bytes(8, "big") + data)

    add("format", str(_FORMAT).encode())
    for path in ANALYSIS_CODE:
        add("code:" + path.name, path.read_bytes())
    for path in (USER_DICT, VARIANTS_FILE, ENGLISH_FILE):
        add("data:" + path.name, path.read_bytes() if path.exists() else b"")
    for dist in _LIBRARIES:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "?"
        add("lib:" + dist, version.encode())
    add("synonyms", json.dumps([list(g) for g in groups], ensure_ascii=False).encode())
    return h.hexdigest()[:24]


def _encode(synonyms: Synonyms, analyzed: dict[str, Analyzed]) -> dict[str, np.ndarray]:
    """One UTF-8 JSON document in a byte array (loads without pickle): the synonym map, a table of
    the distinct terms and characters, and per text its normalised form, codes, and its terms and
    characters as indices into that table (decoded by ``map``)."""
    table: dict[str, int] = {}

    def ids(items: Sequence[str]) -> list[int]:
        return [table.setdefault(s, len(table)) for s in items]

    texts = {t: [a.text, ids(a.terms), list(a.codes), ids(a.chars)] for t, a in sorted(analyzed.items())}
    body = {"synonyms": sorted(synonyms.canonical.items()), "table": list(table), "texts": texts}
    blob = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return {"body": np.frombuffer(blob, dtype=np.uint8)}


def _decode(arrays: dict[str, np.ndarray]) -> tuple[dict[str, str], dict[str, Analyzed]]:
    body = json.loads(arrays["body"].tobytes().decode("utf-8"))
    canonical = {intern(k): intern(v) for k, v in body["synonyms"]}
    # interned like the analyser's own words: the index holds many occurrences of few terms
    term = [intern(s) for s in body["table"]].__getitem__
    texts = {
        t: Analyzed(text=v[0], terms=tuple(map(term, v[1])), codes=tuple(v[2]), chars=tuple(map(term, v[3])))
        for t, v in body["texts"].items()
    }
    return canonical, texts


def _read_shipped(path: Path, key: str) -> tuple[dict[str, str], dict[str, Analyzed]] | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                log.info("analysis memo %s is stale (content analysed at start)", path.name)
                return None
            return _decode({"body": data["body"]})
    except (OSError, KeyError, ValueError) as exc:
        log.warning("cannot read the analysis memo %s: %s", path, exc)
        return None


class AnalysisMemo:
    """The analyses known for one key (shipped, then cached), and those made since.

    Use :meth:`synonyms` for the synonym map and :meth:`analyzer` for a lookup-or-analyse
    function over content texts; :meth:`save` adds what was analysed afresh to the cache bundle.
    Not for user queries: those are one-offs and would only grow the cache.
    """

    def __init__(
        self, groups: Sequence[Sequence[str]], cache: SignedStore | None = None, shipped: Path | bool = True
    ) -> None:
        """``shipped``: True reads the package's memo, False none, a path that file."""
        self.groups = [list(g) for g in groups]
        self.key = memo_key(self.groups)
        self._cache = cache
        self._canonical: dict[str, str] | None = None
        self._known: dict[str, Analyzed] = {}
        self._fresh: dict[str, Analyzed] = {}
        self._fresh_synonyms = False
        self._shipped: frozenset[str] = frozenset()
        self._used: set[str] = set()  # texts looked up that the shipped memo does not cover
        path = SHIPPED_MEMO if shipped is True else shipped or None
        found = _read_shipped(path, self.key) if path is not None else None
        if found is not None:
            self._canonical, self._known = found
            self._shipped = frozenset(self._known)
        if cache is not None:
            arrays = cache.load(_BUNDLE + self.key)
            if arrays is not None and "body" in arrays:
                try:
                    canonical, cached = _decode(arrays)
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    log.warning("analysis cache unusable (%s); analysing afresh", exc)
                else:
                    self._canonical = self._canonical or canonical
                    for text, analyzed in cached.items():
                        self._known.setdefault(text, analyzed)

    def __len__(self) -> int:
        return len(self._known)

    def synonyms(self) -> Synonyms:
        """The synonym map of the groups: from the memo, else built (and remembered)."""
        if self._canonical is None:
            self._canonical = dict(build(self.groups, raw_terms).canonical)
            self._fresh_synonyms = True
        canonical = self._canonical
        prefixes = frozenset(key[:k] for key in canonical for k in range(1, len(key) + 1))
        return Synonyms(canonical, prefixes)

    def analyzer(self, analyzer: Analyzer) -> Callable[[str], Analyzed]:
        """``analyzer.analyze`` answered from the memo where it can (the analyser must use
        :meth:`synonyms`' map, as the memo's analyses do)."""
        known, fresh, shipped, used, analyze = self._known, self._fresh, self._shipped, self._used, analyzer.analyze

        def lookup(text: str) -> Analyzed:
            found = known.get(text)
            if found is None:
                found = known[text] = fresh[text] = analyze(text)
            if text not in shipped:
                used.add(text)
            return found

        return lookup

    def covers(self, texts: Iterable[str]) -> bool:
        return all(t in self._known for t in texts)

    def save(self) -> None:
        """Write the cache bundle when something was analysed afresh (no-op otherwise, or without
        a cache): the texts used since the last save that the shipped memo does not cover, so the
        bundle follows the current content instead of growing with every edit."""
        if self._cache is None or not (self._fresh or self._fresh_synonyms):
            self._used.clear()
            return
        assert self._canonical is not None
        keep = {t: self._known[t] for t in self._used}
        self._used.clear()
        try:
            self._cache.save(_BUNDLE + self.key, _encode(Synonyms(self._canonical), keep))
            self._cache.prune(_BUNDLE, keep=_BUNDLE + self.key)
        except OSError as exc:
            log.warning("cannot write the analysis cache: %s", exc)
            return
        log.info("analysed %d knowledge texts no memo covered; cached", len(self._fresh))
        self._fresh.clear()  # the lookups hold this dict: empty it, do not replace it
        self._fresh_synonyms = False

    def write_shipped(self, path: Path = SHIPPED_MEMO) -> None:
        """Write every analysis known as the shipped memo (``qibot kb build``), atomically."""
        assert self._canonical is not None, "call synonyms() first"
        tmp = path.with_name(path.name + ".tmp.npz")
        arrays = _encode(Synonyms(self._canonical), self._known)
        np.savez_compressed(tmp, key=np.array(self.key), body=arrays["body"])
        tmp.replace(path)
