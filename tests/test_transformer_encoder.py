"""jaxdl's TransformerEncoder: config validation, dropout on and off (by argument and
by nnx.view, as fit's train and eval graphs set it), the attention paths, masking,
shape errors and gradients. Its equality with BERT is in test_bert_checkpoint.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdl.errors import ConfigError, DataError
from jaxdl.models.transformer_encoder import TransformerEncoder, TransformerEncoderConfig
from jaxdl.train.state import split_model

SIZES = dict(vocab_size=30, hidden_size=16, num_layers=2, num_heads=4, intermediate_size=24,
             max_positions=12)
IDS = np.array([[2, 5, 9, 7, 3, 0, 0], [2, 11, 3, 0, 0, 0, 0]], np.int32)
MASK = (IDS != 0).astype(np.int32)


def _encoder(**overrides) -> TransformerEncoder:
    return TransformerEncoder(TransformerEncoderConfig(**{**SIZES, **overrides}),
                              rngs=nnx.Rngs(0))


@pytest.mark.parametrize("overrides, expected", [
    ({"hidden_size": 18}, "hidden_size=18 is not a multiple of num_heads=4"),
    ({"num_layers": 0}, "num_layers=0: expected a positive integer"),
    ({"vocab_size": True}, "vocab_size=True: expected a positive integer"),
    ({"max_positions": 8.0}, "max_positions=8.0: expected a positive integer"),
    ({"dropout": 1.0}, "dropout=1.0: expected a rate in [0, 1)"),
    ({"attention_dropout": -0.1}, "attention_dropout=-0.1: expected a rate in [0, 1)"),
    ({"layer_norm_eps": 0.0}, "layer_norm_eps=0.0: expected a number > 0"),
])
def test_config_errors_name_the_field(overrides, expected):
    with pytest.raises(ConfigError) as error:
        TransformerEncoderConfig(**{**SIZES, **overrides})
    assert f"TransformerEncoderConfig.{expected}" in str(error.value)


def _jitted(graphdef, *state, seed=None, **options):
    """The encoder's call as one compiled program (eager dispatch compiles op by op)."""
    def call(state, ids, mask):
        rngs = None if seed is None else nnx.Rngs(dropout=seed)
        return nnx.merge(graphdef, *state)(ids, mask, rngs=rngs, **options)
    compiled = jax.jit(call)
    return lambda ids, mask: np.asarray(compiled(state, ids, mask))


def test_dropout_is_off_by_default_and_by_view_and_on_when_asked():
    # One block: each dropout site adds RNG code that is slow to compile on CPUs.
    encoder = _encoder(dropout=0.2, attention_dropout=0.2, num_layers=1)
    graphdef, state = nnx.split(encoder)
    with jax.numpy_rank_promotion("raise"):
        off = _jitted(graphdef, state)(IDS, MASK)
        dropping = _jitted(graphdef, state, deterministic=False, seed=1)
        on, same_key = dropping(IDS, MASK), dropping(IDS, MASK)
    assert off.shape == (2, 7, 16) and off.dtype == np.float32
    np.testing.assert_array_equal(on, same_key)
    assert np.abs(on - off).max() > 0.1
    # fit's graphs: the eval view is dropout-free, the train view drops (deterministic=None).
    graphdef_train, graphdef_eval, params, rest = split_model(encoder)
    evaluated = _jitted(graphdef_eval, params, rest, deterministic=None)(IDS, MASK)
    np.testing.assert_array_equal(evaluated, off)
    trained = _jitted(graphdef_train, params, rest, deterministic=None, seed=1)(IDS, MASK)
    np.testing.assert_array_equal(trained, on)


def test_explicit_attention_path_equals_the_fused_one():
    """With attention dropout on, the probabilities are materialised (einsum + softmax);
    a rate of 1e-9 drops nothing in practice, so it must equal the fused kernel's output."""
    graphdef, state = nnx.split(_encoder(dropout=0.0, attention_dropout=1e-9, num_layers=1))
    fused = _jitted(graphdef, state)(IDS, MASK)
    explicit = _jitted(graphdef, state, deterministic=False, seed=0)(IDS, MASK)
    real = MASK > 0
    np.testing.assert_allclose(explicit[real], fused[real], atol=1e-5, rtol=0)


def test_padding_ids_and_segments_reach_only_what_they_should():
    encoder = _encoder()
    base = np.asarray(encoder(IDS, MASK))
    other_pads = np.where(MASK > 0, IDS, 17).astype(np.int32)
    np.testing.assert_allclose(np.asarray(encoder(other_pads, MASK))[MASK > 0], base[MASK > 0],
                               atol=1e-6, rtol=0)
    segments = np.asarray(encoder(IDS, MASK, np.ones_like(IDS)))
    assert np.abs(segments - base)[MASK > 0].min() > 0  # segment 1 changes every token


def test_shape_errors():
    encoder = _encoder()
    long_ids = np.ones((1, 13), np.int32)
    with pytest.raises(DataError, match="sequences of 13 tokens; the position table has "
                                        "max_positions=12"):
        encoder(long_ids, np.ones_like(long_ids))
    with pytest.raises(DataError, match=r"attention_mask \(2, 6\); expected both \[B, T\]"):
        encoder(IDS, MASK[:, :6])
    with pytest.raises(DataError, match=r"token_type_ids \(2, 6\)"):
        encoder(IDS, MASK, IDS[:, :6])


def test_gradients_through_a_jitted_pure_step():
    encoder = _encoder()
    graphdef, params, rest = nnx.split(encoder, nnx.Param, ...)

    @jax.jit
    def loss_and_grads(params, ids, mask):
        def loss(params):
            states = nnx.merge(graphdef, params, rest)(ids, mask)
            return jnp.sum(states[:, 0] ** 2)
        return jax.value_and_grad(loss)(params)

    value, grads = loss_and_grads(params, IDS, MASK)
    flat = jax.tree.leaves(grads)
    assert np.isfinite(float(value)) and all(np.isfinite(np.asarray(g)).all() for g in flat)
    word_grad = np.asarray(grads["embeddings"]["word"]["embedding"])
    # Only ids that occur get gradient; the pad id's comes from padded queries only
    # through nothing (padded keys are masked), so it is exactly zero.
    assert set(np.flatnonzero(np.abs(word_grad).sum(1))) == set(IDS[MASK > 0].tolist())
