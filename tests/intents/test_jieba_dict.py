"""jieba's dictionary read by first character (intents/jieba_dict.py) cuts exactly as jieba does.

The shipped NLU model and knowledge memo were built with a plain ``jieba.Tokenizer``: a single
different cut would change answers, so the sharded tokenizer is compared with one on every
training text and every knowledge entry, in the three modes the code and jieba use.
"""

from __future__ import annotations

from pathlib import Path

import jieba
import pytest

from intents import jieba_dict, normalize
from intents.dataset import load_training
from intents.jieba_dict import ShardedTokenizer, Shards, cache_path
from intents.normalize import USER_DICT
from knowledge.entries import load_entries

#: Texts jieba's HMM and search modes treat specially: unknown names, Latin, digits, punctuation.
ODD_TEXTS = ["", "吗", "GB/T 19001-2016 认证", "厦门市湖里区某某精密仪器有限公司", "CNAS-CL01 2018版",
             "电子秤要定期送检吗？？", "首席质量官", "ｆｕｌｌ　ｗｉｄｔｈ １２３", "量\n\n值  溯源"]


@pytest.fixture(scope="module")
def plain() -> jieba.Tokenizer:
    tok = jieba.Tokenizer()
    jieba.setLogLevel(60)
    tok.initialize()
    tok.load_userdict(str(USER_DICT))
    return tok


@pytest.fixture(scope="module")
def texts() -> list[str]:
    entries = load_entries()
    found = [e.text for e in load_training()] + ODD_TEXTS
    for entry in entries:
        found += [entry.title, entry.answer, *entry.questions]
    return [normalize.normalize(t).text for t in found]


def cuts(tok: jieba.Tokenizer, text: str) -> tuple[list[str], ...]:
    """The two modes the NLU features and the knowledge analysis cut with."""
    return tok.lcut(text), tok.lcut(text, HMM=False)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory, plain: jieba.Tokenizer) -> Path:
    """A cache directory whose grouped file a first tokenizer built (the miss on a new machine)."""
    directory = tmp_path_factory.mktemp("jieba")
    first = ShardedTokenizer(USER_DICT, cache_dir=directory)
    assert first.lcut("电子秤要定期送检吗") == plain.lcut("电子秤要定期送检吗")
    return directory


def test_cuts_like_jieba_reading_the_dictionary_by_first_character(
    cache_dir: Path, plain: jieba.Tokenizer, texts: list[str]
) -> None:
    tok = ShardedTokenizer(USER_DICT, cache_dir=cache_dir)
    for text in texts:
        assert cuts(tok, text) == cuts(plain, text), text
    for text in ODD_TEXTS:  # and jieba's search mode, which looks up 2- and 3-grams of words
        assert tok.lcut_for_search(text) == plain.lcut_for_search(text)
    assert tok.total == plain.total
    assert len(tok.FREQ) < len(plain.FREQ)  # it did not read the whole dictionary


def test_a_user_word_is_not_overwritten_by_a_later_group(cache_dir: Path, plain: jieba.Tokenizer) -> None:
    tok = ShardedTokenizer(None, cache_dir=cache_dir)
    tok.add_word("电子秤送检", 99)
    assert tok.lcut("电子秤送检") == ["电子秤送检"]
    tok.lcut("电子的秤")  # loads other groups
    assert tok.FREQ["电子秤送检"] == 99 and tok.FREQ["电子"] == plain.FREQ["电子"]


def test_a_damaged_or_foreign_cache_file_is_not_read(cache_dir: Path, tmp_path: Path) -> None:
    good = cache_path(cache_dir).read_bytes()
    for damaged in (b"not a dictionary", good[:len(good) // 2], b"\0" * 64):
        path = tmp_path / "shards"
        path.write_bytes(damaged)
        assert Shards.read(path) is None
    assert Shards.read(tmp_path / "missing") is None


def test_the_shared_tokenizer_is_the_sharded_one() -> None:
    jieba_dict.install()
    assert isinstance(normalize.tokenizer(), ShardedTokenizer)
