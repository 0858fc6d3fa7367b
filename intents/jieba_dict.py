"""jieba's dictionary, read by first character as texts need it, instead of whole at start.

Why: jieba keeps its 350,000-word dictionary (with every word's prefixes, ~500,000 keys) in one
Python dict that it unmarshals from a cache file at its first cut: ~0.6 s of a 2-second
``qibot ask``, although one question touches the entries of a dozen characters. This module writes
the same entries once per machine, grouped by first character, to a cache file beside jieba's own
(the temporary directory), and a :class:`ShardedTokenizer` loads a character's group the first
time a text to cut contains that character.

Why the cuts are exactly jieba's: every dictionary lookup jieba makes while cutting a text (the
DAG of word candidates, the route's frequencies, the search mode's 2- and 3-grams) is of a
substring of that text, and every substring starts with one of its characters; ``get_DAG`` runs
before any of those lookups and loads the groups of all the text's characters first, and
``add_word`` (the user dictionary) loads its word's group before it writes, so a later load never
overwrites an added word. ``total`` is the whole dictionary's. ``tests/intents/test_jieba_dict.py``
compares the cuts with a plain ``jieba.Tokenizer`` on the training data and the knowledge base.

The tokenizer is installed as the shared one of :mod:`intents.normalize` by ``intents/__init__.py``
(normalize.py itself is part of the model fingerprints: editing it would invalidate the shipped
NLU model and knowledge memo, although the cuts do not change).
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os
import sys
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any


def _import_jieba_without_pkg_resources() -> None:
    """Import jieba without setuptools' ``pkg_resources`` (~0.1 s of every process start, and a
    deprecation warning). jieba only uses it to open its bundled dictionary, and falls back to a
    plain ``open`` of the same file when the import fails, as it does wherever setuptools is
    absent (e.g. Python 3.12 virtualenvs). Left alone when something imported it already."""
    if "jieba" in sys.modules or "pkg_resources" in sys.modules:
        return
    sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # makes the import fail
    try:
        import jieba  # noqa: F401
    finally:
        del sys.modules["pkg_resources"]


_import_jieba_without_pkg_resources()

import jieba  # noqa: E402

log = logging.getLogger(__name__)

_MAGIC = b"qibot-jieba-shards-1\n"


def _dictionary_key() -> str:
    """Identity of jieba's bundled dictionary (its version, path, size and modification time)."""
    dict_file = Path(jieba.__file__).with_name(jieba.DEFAULT_DICT_NAME)
    stat = dict_file.stat()
    raw = f"{jieba.__version__}\0{dict_file}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def cache_path(directory: Path | None = None) -> Path:
    """Where the grouped dictionary is kept: jieba's own cache directory unless told otherwise."""
    return Path(directory or tempfile.gettempdir()) / f"qibot-jieba-{_dictionary_key()}.shards"


class Shards:
    """The grouped dictionary file: an index {first character: (offset, length)} and the total
    frequency, then one marshalled dict per first character."""

    def __init__(self, data: bytes, index: dict[str, tuple[int, int]], total: int) -> None:
        self._data = memoryview(data)
        self._index = index
        self.total = total

    def entries(self, char: str) -> dict[str, int]:
        where = self._index.get(char)
        if where is None:
            return {}
        offset, length = where
        entries: dict[str, int] = marshal.loads(self._data[offset:offset + length])
        return entries

    @classmethod
    def read(cls, path: Path) -> Shards | None:
        """The file at ``path``, or None when it is missing, foreign or damaged."""
        try:
            data = path.read_bytes()
            if not data.startswith(_MAGIC):
                return None
            start = len(_MAGIC) + 8
            size = int.from_bytes(data[len(_MAGIC):start], "big")
            header: Any = marshal.loads(data[start:start + size])
            index, total, length = header["index"], header["total"], header["length"]
            base = start + size
            if not isinstance(index, dict) or not isinstance(total, int) or len(data) != base + length:
                return None  # foreign, or cut short (a full disk)
            return cls(data, {ch: (base + off, n) for ch, (off, n) in index.items()}, total)
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            return None

    @staticmethod
    def write(path: Path, freq: dict[str, int], total: int) -> None:
        """Group ``freq`` by first character and write it atomically (another process may be
        writing the same file: the last complete one wins, a reader never sees half of one)."""
        groups: dict[str, dict[str, int]] = defaultdict(dict)
        for word, count in freq.items():
            if word:
                groups[word[0]][word] = count
        blobs, index, offset = [], {}, 0
        for char, entries in groups.items():
            blob = marshal.dumps(entries)
            index[char] = (offset, len(blob))
            blobs.append(blob)
            offset += len(blob)
        header = marshal.dumps({"index": index, "total": total, "length": offset})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_MAGIC + len(header).to_bytes(8, "big") + header)
                for blob in blobs:
                    out.write(blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def load_shards(directory: Path | None = None) -> tuple[Shards | None, jieba.Tokenizer | None]:
    """The grouped dictionary, building its file first when it is missing. On a miss (the first
    use on a machine) the whole dictionary is loaded anyway: it is returned as a plain, ready
    tokenizer so that this process does not read the dictionary twice."""
    path = cache_path(directory)
    shards = Shards.read(path)
    if shards is not None:
        return shards, None
    jieba.setLogLevel(60)  # as intents.normalize does: no "Building prefix dict" on stderr
    plain = jieba.Tokenizer()
    plain.initialize()
    try:
        Shards.write(path, plain.FREQ, plain.total)
    except OSError as exc:  # a read-only temporary directory: cut with the whole dictionary
        log.warning("cannot write jieba's grouped dictionary to %s: %s", path, exc)
    return None, plain


class ShardedTokenizer(jieba.Tokenizer):
    """A ``jieba.Tokenizer`` on jieba's default dictionary plus ``user_dict``, whose dictionary
    entries are loaded by first character before each cut (see the module docstring)."""

    def __init__(self, user_dict: Path | None = None, cache_dir: Path | None = None) -> None:
        super().__init__()
        self.initialized: bool = False
        self._user_dict = user_dict
        self._cache_dir = cache_dir
        self._shards: Shards | None = None
        self._loaded: set[str] = set()
        self._shard_lock = threading.Lock()

    def initialize(self, dictionary: str | None = None) -> None:
        if dictionary:
            raise ValueError("ShardedTokenizer cuts with jieba's default dictionary only")
        with self.lock:
            if self.initialized:
                return
            shards, plain = load_shards(self._cache_dir)
            if shards is not None:
                self.FREQ, self.total, self._shards = {}, shards.total, shards
            else:  # first use on this machine: the whole dictionary is already in memory
                assert plain is not None
                self.FREQ, self.total, self._shards = plain.FREQ, plain.total, None
            self.initialized = True
            if self._user_dict is not None and self._user_dict.exists():
                self.load_userdict(str(self._user_dict))

    def _need(self, text: str) -> None:
        """Load the dictionary groups of the characters of ``text`` not loaded yet."""
        if self._shards is None:
            return
        missing = set(text).difference(self._loaded)
        if not missing:
            return
        with self._shard_lock:
            for char in missing:
                if char not in self._loaded:
                    self.FREQ.update(self._shards.entries(char))  # one C-level merge: atomic
                    self._loaded.add(char)

    def get_DAG(self, sentence: str) -> dict[int, list[int]]:  # jieba's name
        self.check_initialized()
        self._need(sentence)
        dag: dict[int, list[int]] = super().get_DAG(sentence)
        return dag

    def add_word(self, word: str, freq: Any = None, tag: str | None = None) -> None:
        self.check_initialized()
        self._need(jieba.strdecode(word)[:1])
        super().add_word(word, freq, tag)


def install() -> None:
    """Make a :class:`ShardedTokenizer` (with the domain user dictionary) the shared tokenizer of
    :mod:`intents.normalize`, unless one is already there. Cheap: nothing is read until the
    first cut."""
    from intents import normalize

    with normalize._tokenizer_lock:
        if normalize._tokenizer is None:
            normalize._tokenizer = ShardedTokenizer(normalize.USER_DICT)
