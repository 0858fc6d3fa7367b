"""The knowledge base the service asks: load validated content, search it, get an entry.

``KnowledgeBase.load`` either returns a complete, searchable index or raises
``KnowledgeBaseError``: the service keeps its old instance when a reload raises, so broken
content never replaces a working index. An instance is immutable after construction and safe to
share between threads and tasks.

``search`` runs: analysis (normalise, codes, jieba, synonyms) → the top 20 candidates by word
BM25F (title, questions, tags, answer) plus a discounted character BM25 → features against each
candidate (normalised BM25 scores, rapidfuzz similarity to its closest phrasing, code matches) →
a fitted softmax over the candidates and "none of these" (``calibration``) → one of three
outcomes:

* ``answer``  confident: show ``best``'s answer;
* ``suggest`` plausible but not sure: offer up to three titles ("您是不是想问");
* ``none``    nothing fits: say so honestly and log the gap.

Query cost is a few sparse row sums and one rapidfuzz call over ~120 short strings: about a
millisecond at 50,000 entries (see ``bench/kb.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from intents.cache import SignedStore
from intents.normalize import normalize
from intents.vectors import Embedder, VectorStore
from knowledge import features as featmod
from knowledge import rerank as rerankmod
from knowledge.analysis import MAX_QUERY_CHARS, Analyzed, Analyzer, raw_terms
from knowledge.bm25 import Bm25Index, Bm25Params
from knowledge.calibration import DENSE_CALIBRATION_FILE, DENSE_FEATURES, Calibration
from knowledge.decision import Decision
from knowledge.decision import features as decision_features
from knowledge.dense import DenseIndex, sentences
from knowledge.entries import Entry, load_entries
from knowledge.focus import focus
from knowledge.memo import AnalysisMemo
from knowledge.overlay import Overlay, apply_overlay
from knowledge.problems import KnowledgeBaseError, Problem
from knowledge.synonyms import Synonyms, build, load_groups

__all__ = ["Hit", "KnowledgeBase", "KnowledgeBaseError", "Outcome", "SearchResult", "build_memo", "content_texts"]

log = logging.getLogger(__name__)

Outcome = Literal["answer", "suggest", "none"]
CANDIDATES = 20  # BM25 candidates re-ranked per query
# Colloquial questions share characters with an entry more often than words ("找人来校一下" has
# no word of "校准"); a character index adds that evidence at a discount.
CHAR_PARAMS = Bm25Params(weights=(("chars", 1.0),))
CHAR_WEIGHT = 0.3
MAX_CHOICES = 3  # "您是不是想问" never offers more than this
FOCUS = True  # drop context clauses of a query before ranking (off only to measure it)
DENSE_CANDIDATES = 10  # entries added to the lexical candidates by each dense similarity
# An English question is judged by the meaning stage whenever there is one: its word scores come
# from the English glossary (``knowledge.english``) and mean less than a Chinese question's.
LATIN_TO_DENSE = True
_CJK = re.compile(r"[\u3400-\u9fff]")


def is_latin(text: str) -> bool:
    """A question without a Chinese character (English, pinyin)."""
    return not _CJK.search(text)


@dataclass(frozen=True, slots=True)
class Hit:
    """One entry found for a query; ``score`` is the calibrated probability that it is right."""

    entry: Entry
    score: float


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What the dialogue needs: which of the three outcomes, and the entries behind it."""

    outcome: Outcome
    hits: tuple[Hit, ...] = ()

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


NO_ANSWER = SearchResult("none", ())


@dataclass(frozen=True, slots=True)
class Ranked:
    """Candidates of one query in rank order with their probabilities (before the outcome)."""

    indices: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray
    features: np.ndarray
    unknown: float = 1.0  # share of the query unknown to the KB
    analyzed: Analyzed | None = field(default=None, compare=False)
    dense: bool = False  # ranked with the sentence-embedding features (and their calibration)
    # P(the top candidate is right) by the decision model, and the P it needs to be answered
    # outright; None without a decision model (the softmax's P(top) and threshold decide)
    p_right: float | None = None
    answer_at: float | None = None
    # P(the KB has an entry for the question at all) by the coverage model, and the P it needs
    # before anything is answered outright; None without a coverage model
    p_covered: float | None = None
    covered_at: float | None = None

    @property
    def confidence(self) -> float:
        """P(the top candidate is the right entry)."""
        return float(self.probabilities[0]) if len(self.probabilities) else 0.0


@dataclass(frozen=True, slots=True)
class _AnalyzedEntry:
    phrasings: tuple[Analyzed, ...]  # title first, then the questions
    tags: tuple[Analyzed, ...]
    answer: Analyzed | None

    def doc(self) -> dict[str, list[str]]:
        """BM25F fields of the entry."""
        doc = {
            "title": list(self.phrasings[0].terms),
            "questions": [t for a in self.phrasings[1:] for t in a.terms],
            "tags": [t for a in self.tags for t in a.terms],
        }
        if self.answer is not None:
            doc["answer"] = list(self.answer.terms)
        return doc

    def char_doc(self) -> dict[str, list[str]]:
        """The characters of the title and the questions (one field of the character index)."""
        return {"chars": [c for a in self.phrasings for c in a.chars]}


class KnowledgeBase:
    """An immutable, searchable index over validated entries."""

    def __init__(
        self,
        entries: Sequence[Entry],
        synonyms: Synonyms | None = None,
        calibration: Calibration | None = None,
        params: Bm25Params | None = None,
        *,
        embedder: Embedder | None = None,
        vectors: VectorStore | None = None,
        dense_calibration: Calibration | None = None,
        memo: AnalysisMemo | None = None,
        decision: Decision | None = None,
    ) -> None:
        """``memo`` answers the analysis of the content texts when it knows them (it must be the
        memo ``synonyms`` came from); what it does not know is analysed and added to its cache."""
        self._entries: tuple[Entry, ...] = tuple(entries)
        self._by_id = {e.id: e for e in self._entries}
        self.analyzer = Analyzer(synonyms)
        self.calibration = calibration or Calibration.load()
        self.params = params or Bm25Params()
        self._embedder = embedder
        self._vectors = vectors
        self.dense_calibration = dense_calibration
        self.decision = decision
        with_answer = dict(self.params.weights).get("answer", 0.0) > 0
        analyze = memo.analyzer(self.analyzer) if memo is not None else self.analyzer.analyze
        analyzed = [
            _AnalyzedEntry(
                tuple(analyze(p) for p in e.phrasings),
                tuple(analyze(t) for t in e.tags),
                analyze(e.answer) if with_answer else None,
            )
            for e in self._entries
        ]
        self._bm25 = Bm25Index([a.doc() for a in analyzed], self.params)
        self._chars = Bm25Index([a.char_doc() for a in analyzed], CHAR_PARAMS)
        self._phrasings = self._build_phrasings(analyzed)
        self._dense: DenseIndex | None = None
        if vectors is not None and (embedder is not None or len(vectors)):
            if self.dense_calibration is None:
                self.dense_calibration = Calibration.load(DENSE_CALIBRATION_FILE, features=DENSE_FEATURES)
            try:
                self._dense = DenseIndex.build(
                    [[p.text for p in a.phrasings] for a in analyzed],
                    [[analyze(s).text for s in sentences(e.answer)] for e in self._entries],
                    vectors,
                    embedder,
                )
            except Exception:  # an optional signal: a failing encoder leaves the lexical index working
                log.exception("sentence vectors unavailable; the knowledge base matches words only")
                self._dense = None
        if memo is not None:
            memo.save()

    @property
    def uses_dense(self) -> bool:
        """Sentence embeddings are consulted for questions the lexical ranking is unsure of."""
        return self._dense is not None and (self._embedder is not None or self._vectors is not None)

    # construction -----------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        directory: Path | str | None = None,
        synonyms: Path | str | None = None,
        calibration: Path | str | None = None,
        *,
        embedder: Embedder | None = None,
        vectors: VectorStore | None = None,
        cache: SignedStore | None = None,
        memo: bool = True,
        overlay: Overlay | None = None,
    ) -> KnowledgeBase:
        """Load, validate and index a directory of entry files (default: the shipped content).
        With an ``embedder`` (and its ``vectors``), questions the lexical ranking is unsure of
        are also matched by meaning. The content's analysis comes from the shipped memo and the
        ``cache`` store where they cover it (``memo=False`` analyses everything afresh).
        ``overlay``: entries edited in the console, laid over the files (``knowledge.overlay``).

        Raises KnowledgeBaseError listing the problems when any file or entry is broken.
        """
        entries = apply_overlay(load_entries(directory), overlay)
        groups = load_groups(synonyms)
        try:
            cal = Calibration.load(calibration)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KnowledgeBaseError([Problem(str(calibration), None, "error", f"bad calibration: {exc}")]) from exc
        decision = Decision.load() if calibration is None else None  # fitted for the shipped calibration
        if not memo:
            return cls(entries, build(groups, raw_terms), cal, embedder=embedder, vectors=vectors, decision=decision)
        analyses = AnalysisMemo(groups, cache)
        return cls(
            entries, analyses.synonyms(), cal, embedder=embedder, vectors=vectors, memo=analyses, decision=decision
        )

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[Entry],
        synonym_groups: Sequence[Sequence[str]] | None = None,
        calibration: Calibration | None = None,
        params: Bm25Params | None = None,
        **dense: Any,
    ) -> KnowledgeBase:
        """Index entries that are already in memory (tests, fitting, the cost bench); ``dense``
        passes ``embedder``, ``vectors``, ``dense_calibration`` and ``decision`` on."""
        groups = load_groups() if synonym_groups is None else synonym_groups
        memo = AnalysisMemo(groups)  # the shipped memo only: nothing is written
        return cls(list(entries), memo.synonyms(), calibration, params, memo=memo, **dense)

    @staticmethod
    def _build_phrasings(analyzed: Sequence[_AnalyzedEntry]) -> featmod.Phrasings:
        texts: list[str] = []
        offsets = [0]
        codes: dict[int, frozenset[str]] = {}
        for index, entry in enumerate(analyzed):
            entry_codes: set[str] = set()
            for a in entry.phrasings:
                texts.append(a.text)
                entry_codes.update(a.codes)
            for a in entry.tags:
                entry_codes.update(a.codes)
            offsets.append(len(texts))
            if entry_codes:
                codes[index] = frozenset(entry_codes)
        return featmod.Phrasings(texts=texts, offsets=np.asarray(offsets, dtype=np.int64), codes=codes)

    # lookup -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> tuple[Entry, ...]:
        return self._entries

    def get(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    def footprint(self) -> int:
        """Approximate bytes held by the index itself (not the entries), for the cost bench."""
        ph = self._phrasings
        total = self._bm25.nbytes + self._chars.nbytes + ph.offsets.nbytes
        total += sys.getsizeof(ph.texts) + sum(sys.getsizeof(t) for t in ph.texts)
        for index in (self._bm25, self._chars):
            total += sys.getsizeof(index.vocab) + sum(sys.getsizeof(t) for t in index.vocab)
        return total

    # search -------------------------------------------------------------------------------

    def _query(self, analyzed: Analyzed) -> featmod.Query:
        vocab, idf = self._bm25.vocab, self._bm25.idf
        known: dict[int, float] = {}
        unknown = 0.0
        for term in dict.fromkeys(analyzed.terms):
            tid = vocab.get(term)
            if tid is None:
                unknown += self._bm25.max_idf
            else:
                known[tid] = float(idf[tid])
        char_ids = self._chars.term_ids(analyzed.chars)
        return featmod.Query(
            text=analyzed.text,
            char_ids=char_ids,
            char_total=float(sum(self._chars.idf[c] for c in char_ids)),
            term_ids=list(known),
            total=sum(known.values()) + unknown,
            unknown=unknown,
            codes=frozenset(analyzed.codes),
        )

    def _candidates(self, query: featmod.Query, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k entries by word BM25F plus discounted character BM25: indices, and the word and
        character scores of every entry."""
        words = self._bm25.scores(query.term_ids)
        chars = self._chars.scores(query.char_ids)
        combined = words + CHAR_WEIGHT * chars
        k = min(k, len(combined))
        idx = np.argpartition(-combined, k - 1)[:k] if k < len(combined) else np.arange(len(combined))
        idx = idx[combined[idx] > 0]
        idx = idx[np.argsort(-combined[idx], kind="stable")]
        return idx, words, chars

    @staticmethod
    def focused(text: str) -> str:
        """The question without its context clauses (``knowledge.focus``): who is asking, why and
        how politely match no entry and only dilute the match scores of what is asked."""
        if not FOCUS:
            return text
        norm = normalize(text[:MAX_QUERY_CHARS]).text
        kept = focus(norm)
        return text if kept == norm else kept

    def bm25(self, text: str, k: int = 10) -> list[tuple[Entry, float]]:
        """Word BM25F alone (a baseline for the bench): entries and score over the query's ceiling."""
        analyzed = self.analyzer.analyze(text)
        if not analyzed.terms or not self._entries:
            return []
        query = self._query(analyzed)
        indices, scores = self._bm25.top(query.term_ids, k)
        ceiling = query.total * (self.params.k1 + 1.0) or 1.0
        return [(self._entries[int(i)], float(s) / ceiling) for i, s in zip(indices, scores, strict=True)]

    def rank(self, text: str, k: int = CANDIDATES, dense: bool | None = None) -> Ranked:
        """Candidates for a text in re-ranked order, with features and probabilities.

        ``dense``: None consults sentence embeddings only when the lexical ranking is not
        confident enough to answer (the service's rule); True/False force it (fitting, benches).
        """
        analyzed = self.analyzer.analyze(self.focused(text))
        nothing = np.empty(0)
        empty = Ranked(np.empty(0, dtype=np.int64), nothing, nothing, np.empty((0, len(featmod.FEATURES))))
        if not (analyzed.terms or analyzed.chars) or not self._entries:
            return empty
        query = self._query(analyzed)
        indices, words, chars = self._candidates(query, k)
        lexical = empty
        feats = np.empty((0, len(featmod.FEATURES)))
        if len(indices):
            feats = self._features(query, indices, words, chars)
            lexical = self._ranked(self.calibration, indices, feats, query, analyzed)
        if not self.uses_dense:
            return self._judged(lexical, self.calibration, "lexical_alone")
        judged = self._judged(lexical, self.calibration, "lexical")
        unsure = not answers(judged, self.calibration) or (LATIN_TO_DENSE and is_latin(analyzed.text))
        if not (dense or (dense is None and unsure)):
            return judged
        ranked = self._rank_dense(analyzed, query, indices, words, chars, feats)
        if ranked is None:  # the encoder failed: the lexical ranking decides alone
            return self._judged(lexical, self.calibration, "lexical_alone")
        assert self.dense_calibration is not None
        return self._judged(ranked, self.dense_calibration, "dense")

    def _judged(self, ranked: Ranked, cal: Calibration, stage: str) -> Ranked:
        """The ranking re-ordered by the stage's re-ranker, with the decision model's P(top is
        right) and the coverage model's P(the KB covers the question), when there are models."""
        model = self.decision.get(stage, cal.features) if self.decision else None
        if model is None or self.decision is None or not len(ranked.indices):
            return ranked
        a = ranked.analyzed
        text = a.text if a is not None else ""
        reranker = self.decision.reranker(stage, cal.features)
        confidence = (0.0, 0.0, 0.0)
        if reranker is not None:
            ranked, confidence = self._reranked(ranked, reranker, text, cal.features)
        x = decision_features(
            ranked.features, ranked.logits, ranked.probabilities, ranked.unknown,
            text, len(a.terms) if a is not None else 0, cal.features, confidence,
        )
        cover = self.decision.cover(stage, cal.features)
        answer_at, covered_at = model.answer, cover.answer if cover is not None else None
        if stage == "dense" and LATIN_TO_DENSE and is_latin(text):
            # English questions have their own thresholds at the meaning stage (``knowledge.fit``)
            own = self.decision.get("dense_latin", cal.features)
            own_cover = self.decision.cover("dense_latin", cal.features)
            if own is not None:
                answer_at = own.answer
            if own_cover is not None and cover is not None:
                covered_at = own_cover.answer
        return dataclasses.replace(
            ranked,
            p_right=model.probability(x),
            answer_at=answer_at,
            p_covered=cover.probability(x) if cover is not None else None,
            covered_at=covered_at,
        )

    def rerank_inputs(self, indices: Iterable[int] | np.ndarray) -> tuple[list[list[str]], list[str], list[str]]:
        """Per candidate entry: its phrasing texts as indexed, its answer and its title (the
        re-ranker's view of an entry)."""
        offsets, texts = self._phrasings.offsets, self._phrasings.texts
        phrasings = [texts[int(offsets[i]) : int(offsets[i + 1])] for i in indices]
        answers = [self._entries[int(i)].answer for i in indices]
        return phrasings, answers, [p[0] if p else "" for p in phrasings]

    def _reranked(
        self, ranked: Ranked, reranker: rerankmod.Reranker, text: str, match_features: tuple[str, ...]
    ) -> tuple[Ranked, tuple[float, float, float]]:
        """The first ``rerank.TOP`` candidates re-ordered (each keeps its own probability and
        features), and the re-ranker's confidence for the decision model."""
        n = min(rerankmod.TOP, len(ranked.indices))
        head = ranked.indices[:n]
        phrasings, answers, titles = self.rerank_inputs(head)
        x = rerankmod.candidate_features(
            text, ranked.features[:n], ranked.logits[:n], phrasings, answers, titles, match_features
        )
        scores = reranker.scores(x)
        order = np.argsort(-scores, kind="stable")
        p1, margin = reranker.confidence(scores)
        confidence = (p1, margin, float(order[0] != 0))
        if order[0] == 0 and (order == np.arange(n)).all():
            return ranked, confidence
        full = np.concatenate((order, np.arange(n, len(ranked.indices))))
        return dataclasses.replace(
            ranked,
            indices=ranked.indices[full],
            logits=ranked.logits[full],
            probabilities=ranked.probabilities[full],
            features=ranked.features[full],
        ), confidence

    def _features(self, query: featmod.Query, indices: np.ndarray, words: np.ndarray, chars: np.ndarray) -> np.ndarray:
        return featmod.compute(
            query, indices, words[indices], chars[indices], self._phrasings, self.params.k1, CHAR_PARAMS.k1
        )

    @staticmethod
    def _ranked(cal: Calibration, indices: np.ndarray, feats: np.ndarray, query: featmod.Query,
                analyzed: Analyzed, dense: bool = False) -> Ranked:
        logits = cal.logits(feats)
        order = np.argsort(-logits, kind="stable")
        logits = logits[order]
        probs = cal.probabilities(logits, query.unknown_share)
        return Ranked(indices[order], logits, probs, feats[order], query.unknown_share, analyzed, dense)

    def embed_query(self, analyzed: Analyzed) -> np.ndarray | None:
        """The query's vector: from the vector files when the text is known (fitting asks the
        entries' own phrasings), else from the embedder (not cached: queries are one-offs);
        None when neither can say."""
        if self._vectors is None:
            return None
        known = self._vectors.lookup(analyzed.text)
        if known is not None:
            return known
        if self._embedder is None:
            return None
        try:
            return np.asarray(self._embedder.embed([analyzed.text])[0], dtype=np.float32)
        except Exception:  # the optional signal must never break a search
            log.exception("query embedding failed; lexical ranking only")
            return None

    def _rank_dense(self, analyzed: Analyzed, query: featmod.Query, lexical: np.ndarray,
                    words: np.ndarray, chars: np.ndarray, lexical_feats: np.ndarray) -> Ranked | None:
        """The meaning stage: the lexical candidates (whose match features ``lexical_feats``, in
        the order of ``lexical``, the lexical stage computed already: each row depends on its
        entry alone) and the entries nearest in meaning, with their two similarities."""
        assert self._dense is not None and self.dense_calibration is not None
        vector = self.embed_query(analyzed)
        if vector is None:
            return None
        best_phrasing, best_sentence = self._dense.scores(vector)
        n = min(DENSE_CANDIDATES, len(best_phrasing))
        extra = np.concatenate(
            (np.argsort(-best_phrasing, kind="stable")[:n], np.argsort(-best_sentence, kind="stable")[:n])
        )
        indices = np.asarray(list(dict.fromkeys([*lexical.tolist(), *extra.tolist()])), dtype=np.int64)
        added = self._features(query, indices[len(lexical):], words, chars)
        match = np.concatenate((lexical_feats, added)) if len(lexical) else added
        feats = np.column_stack((match, best_phrasing[indices], best_sentence[indices]))
        return self._ranked(self.dense_calibration, indices, feats, query, analyzed, dense=True)

    def search(self, text: str, limit: int = 3) -> SearchResult:
        """The outcome for a user's question; never raises on odd input (it answers none)."""
        try:
            ranked = self.rank(text if isinstance(text, str) else str(text))
        except Exception:  # a question must never crash a conversation; the KB logs it
            log.exception("knowledge search failed for %r", str(text)[:80])
            return NO_ANSWER
        if not len(ranked.indices) or limit <= 0:
            return NO_ANSWER
        cal = self.dense_calibration if ranked.dense and self.dense_calibration is not None else self.calibration
        return decide(self._entries, ranked, cal, limit)


def answers(ranked: Ranked, cal: Calibration) -> bool:
    """Whether the top candidate is answered outright: by the decision model when the ranking
    was judged by one, else by the softmax's P(top) against the calibration's threshold."""
    if not len(ranked.indices):
        return False
    if ranked.p_covered is not None and ranked.covered_at is not None and ranked.p_covered < ranked.covered_at:
        return False  # most likely a topic the KB lacks: never a direct answer (choices at most)
    if ranked.p_right is not None and ranked.answer_at is not None:
        return ranked.p_right >= ranked.answer_at
    return ranked.confidence >= cal.answer


def decide(entries: Sequence[Entry], ranked: Ranked, cal: Calibration, limit: int = 3) -> SearchResult:
    """The three outcomes from ranked candidates: answer when the top one is likely right,
    else offer the candidates that are probable enough (at most three), else none."""
    hits = [
        Hit(entries[int(i)], round(float(p), 4))
        for i, p in zip(ranked.indices[:limit], ranked.probabilities[:limit], strict=True)
    ]
    if not hits:
        return NO_ANSWER
    if answers(ranked, cal):
        return SearchResult("answer", tuple(hits))
    choices = [h for h in hits[:MAX_CHOICES] if h.score >= cal.suggest]
    return SearchResult("suggest", tuple(choices)) if choices else NO_ANSWER


def content_texts(entries: Iterable[Entry]) -> list[str]:
    """Every content text an index of the entries analyses: phrasings, tags, answers and the
    answers' sentences (the dense index's), without duplicates; what a memo must cover."""
    texts: dict[str, None] = {}
    for e in entries:
        texts.update(dict.fromkeys((*e.phrasings, *e.tags, e.answer, *sentences(e.answer))))
    return list(texts)


def build_memo(directory: Path | str | None = None, synonyms: Path | str | None = None) -> AnalysisMemo:
    """A memo of the analysis of every text of a content directory (default: the shipped
    content), analysed afresh: ``qibot kb build`` writes it as the shipped memo."""
    entries = load_entries(directory)
    memo = AnalysisMemo(load_groups(synonyms), shipped=False)
    analyze = memo.analyzer(Analyzer(memo.synonyms()))
    for text in content_texts(entries):
        analyze(text)
    return memo
