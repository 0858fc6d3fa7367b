"""English words of a question, and the Chinese words the entries use for them.

The content is Chinese with one or a few English phrasings per entry. An English question used to
be cut by jieba like Chinese (the user dictionary's ``ce`` turned "grocery" into gro/ce/ry), kept
its function words ("do", "the", "have", "to": a third of its BM25 mass, matching every English
phrasing alike), and shared no word and no character with the Chinese phrasings, titles and
answers that carry most of an entry's evidence, so its lexical scores sat near zero and the "none"
outcome won even where the meaning signal had found the entry.

Here an English word standing on its own (not glued to Chinese characters or digits, so model
numbers and codes are left to jieba and ``codes``) is kept whole, lower-cased and lightly stemmed
(plural, -ed, -ing); function words are dropped; and the phrases of ``data/english.yaml`` (a
glossary written from the entries' titles and tags: "weighing scale" → 电子秤, "verified" → 检定)
are replaced by their Chinese words, so an English question meets the Chinese text of an entry in
the word and the character index alike. Entries' own English phrasings go through the same steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from sys import intern

from intents import yamlfile

ENGLISH_FILE = Path(__file__).parent / "data" / "english.yaml"
#: An English word that stands on its own: not glued to Chinese characters, digits or other letters.
WORD = re.compile(r"(?<![a-z0-9\u3400-\u9fff])[a-z]+(?:['’][a-z]+)?(?![a-z0-9\u3400-\u9fff])")
_MAX_PHRASE = 4  # words a glossary phrase may span

# Function words that say nothing about the topic. Question words that tell topics apart (when,
# who, where, long, much, many) stay, as 多久/谁/哪里 do in Chinese.
_STOPWORD_TEXT = """
    a an the and or but if then than so as of in on at to into onto from by with without for about
    over under between after before during within per via up out off
    i me my mine we us our ours you your yours he him his she her it its they them their this that
    these those there here
    is am are was were be been being do does did done doing have has had having
    can could shall should will would may might must need needs needed
    what which how why whom whose
    any some all each every no not only just also still too very really actually please hi hello
    dear thanks thank sir madam ok okay yes
    i'm it's what's we're don't doesn't isn't aren't can't there's that's we've i've you're
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def stem(word: str) -> str:
    """A light stem: plurals, -ed and -ing folded (verified/verifies/verifying → verify, tests →
    test); short words and those ending in -ss, -us, -is as they are."""
    w = word.replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) <= 3:
        return w
    if w.endswith(("ies", "ied")) and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("sses"):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    if w.endswith("ing") and len(w) > 5:
        return w[:-3]
    if w.endswith("ed") and len(w) > 4:
        return w[:-2]
    return w


def token(word: str) -> str | None:
    """The term of one English word, or None for a function word."""
    w = word.replace("’", "'")
    if w in STOPWORDS:
        return None
    return intern(stem(w))


@dataclass(frozen=True, slots=True)
class Glossary:
    """Stemmed English phrases (tuples of terms) → the Chinese words that replace them."""

    phrases: dict[tuple[str, ...], tuple[str, ...]]

    def expand(self, words: list[str], cut: Callable[[str], Sequence[str]]) -> list[str]:
        """``words`` with every glossary phrase (longest first) replaced by its Chinese words,
        each ``cut`` into the words the index holds."""
        if not self.phrases:
            return words
        out: list[str] = []
        i, n = 0, len(words)
        while i < n:
            hit, end = None, i
            for j in range(min(n, i + _MAX_PHRASE), i, -1):
                found = self.phrases.get(tuple(words[i:j]))
                if found is not None:
                    hit, end = found, j
                    break
            if hit is None:
                out.append(words[i])
                i += 1
            else:
                out.extend(w for c in hit for w in cut(c))
                i = end
        return out


def parse(data: object) -> dict[tuple[str, ...], tuple[str, ...]]:
    """The phrase table of a glossary document: ``terms: {english phrase: 中文 词}``."""
    terms = data.get("terms") if isinstance(data, dict) else None
    if not isinstance(terms, dict):
        raise ValueError("expected a mapping with a 'terms' mapping of English phrase → Chinese words")
    out: dict[tuple[str, ...], tuple[str, ...]] = {}
    for key, value in terms.items():
        words = [t for w in WORD.findall(str(key).casefold()) if (t := token(w)) is not None]
        chinese = tuple(str(value).split()) if value is not None else ()
        if words and chinese:
            out.setdefault(tuple(words), chinese)
    return out


@cache
def glossary(path: Path = ENGLISH_FILE) -> Glossary:
    if not path.exists():
        return Glossary({})
    return Glossary(parse(yamlfile.read(path)))


__all__ = ["ENGLISH_FILE", "STOPWORDS", "WORD", "Glossary", "glossary", "stem", "token"]
