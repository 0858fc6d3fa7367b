"""The NLU's weights are held as float32 (half the resident bytes per worker) and score exactly
as the same values held as float64 did: what a user is told does not change."""

from __future__ import annotations

import numpy as np

from intents import linear
from intents.classifier import Nlu

TEXTS = ["加油机要校一下", "出口欧盟的玩具要做什么测试", "商标被人抢注了怎么办", "转人工", "你好", "质检报高有效期几年"]


def _as_float64(model: linear.LinearModel) -> tuple[np.ndarray, np.ndarray]:
    return model.weights.astype(np.float64), model.idf.astype(np.float64)


def test_weights_are_float32(nlu: Nlu) -> None:
    for model in (nlu.act_model, nlu.domain_model, nlu.embed_act, nlu.embed_domain):
        if model is not None:
            assert model.weights.dtype == np.float32
            assert model.weights.flags.c_contiguous
    assert nlu.act_model.idf.dtype == np.float32 and nlu.domain_model.idf.dtype == np.float32


def test_scores_equal_the_float64_arithmetic(nlu: Nlu) -> None:
    """Each product has a float64 operand, so the float32 values are widened exactly: the logits
    are bit-for-bit those of a float64 copy of the same weights."""
    for model in (nlu.act_model, nlu.domain_model):
        weights64, idf64 = _as_float64(model)
        for text in TEXTS:
            feats = nlu.featurizer.features(text)
            idx, values = model.vectorize(feats)
            assert values.dtype == np.float64
            tf = np.array([1.0 + np.log(feats[model.vocabulary[i]]) for i in idx])
            expected_values = tf * idf64[idx]
            expected_values = expected_values / np.sqrt(expected_values @ expected_values)
            np.testing.assert_array_equal(values, expected_values)
            expected = expected_values @ weights64[idx] + model.bias
            np.testing.assert_array_equal(model.logits(feats), expected)
    if nlu.embed_act is not None:
        x = np.linspace(-1.0, 1.0, nlu.embed_act.weights.shape[0])
        np.testing.assert_array_equal(nlu.embed_act.logits_dense(x),
                                      x @ nlu.embed_act.weights.astype(np.float64) + nlu.embed_act.bias)


def test_round_trip_keeps_float32_weights() -> None:
    model = linear.DenseModel(["a", "b"], np.array([[0.1, -0.2], [0.3, 0.4]]), np.zeros(2), 1.0)
    again = linear.DenseModel.from_arrays(model.to_arrays("m."), "m.")
    assert again.weights.dtype == np.float32
    np.testing.assert_array_equal(again.weights, model.weights)
