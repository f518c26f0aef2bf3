"""Recurrent layers and sequence models: padding invariance, final states, sampling."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxdl.errors import ConfigError
from jaxdl.models.rnn import RNN
from jaxdl.models.sequence import LSTMTagger, RNNClassifier, RNNLanguageModel

CELLS = ("lstm", "gru", "rnn")
LENGTH, LONGEST = 4, 7  # the sentence under test, and its longest batch neighbour


@pytest.fixture(autouse=True)
def strict_rank_promotion():
    # Silent broadcasting between ranks would hide shape bugs in masks.
    with jax.numpy_rank_promotion("raise"):
        yield


def jit_apply(module, fn, *args):
    """`fn(module, *args)` compiled once as a whole.

    Eager `lax.scan` compiles every call; one jit per test keeps the suite fast.
    """
    graphdef, state = nnx.split(module)
    return jax.jit(lambda state, *args: fn(nnx.merge(graphdef, state), *args))(state, *args)


def padded_batch(sentence: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`sentence [LENGTH, F]` as row 1 of a batch with a longer and a shorter neighbour; padding is noise."""
    features = sentence.shape[-1]
    batch = jax.random.normal(key, (3, LONGEST, features))  # noise everywhere, padding included
    batch = batch.at[1, :LENGTH].set(sentence)
    lengths = jnp.array([LONGEST, LENGTH, 2])
    mask = (jnp.arange(LONGEST)[None, :] < lengths[:, None]).astype(jnp.float32)
    return batch, mask


def masked_cross_entropy(logits, targets, mask):
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    return jnp.sum(losses * mask) / jnp.sum(mask)


@pytest.mark.parametrize("cell,bidirectional", list(itertools.product(CELLS, (False, True))))
def test_padding_changes_neither_outputs_nor_loss_nor_final_state(cell, bidirectional):
    rnn = RNN(3, 5, cell=cell, num_layers=2, bidirectional=bidirectional, rngs=nnx.Rngs(0))
    sentence = jax.random.normal(jax.random.key(1), (LENGTH, 3))
    batch, mask = padded_batch(sentence, jax.random.key(2))

    (alone, alone_final), (batched, batched_final) = jit_apply(
        rnn,
        lambda rnn, sentence, batch, mask: (
            rnn(sentence[None], return_final_state=True),
            rnn(batch, mask, return_final_state=True),
        ),
        sentence, batch, mask,
    )

    # Same numbers up to float rounding of different matmul shapes (batch 1 vs 3).
    np.testing.assert_allclose(batched[1, :LENGTH], alone[0], atol=1e-6)
    np.testing.assert_allclose(batched_final[1], alone_final[0], atol=1e-6)
    assert batched.shape == (3, LONGEST, 10 if bidirectional else 5)
    assert np.all(np.asarray(batched[1, LENGTH:]) == 0.0)  # outputs at padding are exactly zero

    targets = jnp.array([0, 2, 1, 3])
    head = jax.random.normal(jax.random.key(3), (rnn.output_features, 4))
    batched_targets = jnp.zeros((3, LONGEST), jnp.int32).at[1, :LENGTH].set(targets)
    row_mask = mask * (jnp.arange(3) == 1)[:, None]  # score only the sentence under test
    loss_alone = masked_cross_entropy(alone @ head, targets[None], jnp.ones((1, LENGTH)))
    loss_batched = masked_cross_entropy(batched @ head, batched_targets, row_mask)
    np.testing.assert_allclose(loss_batched, loss_alone, rtol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_padding_values_never_reach_real_positions_bitwise(cell):
    rnn = RNN(3, 4, cell=cell, num_layers=2, bidirectional=True, rngs=nnx.Rngs(0))
    sentence = jax.random.normal(jax.random.key(1), (LENGTH, 3))
    batch_a, mask = padded_batch(sentence, jax.random.key(2))
    batch_b = jnp.where(mask[..., None] > 0, batch_a, 1e3)  # wildly different padding values
    (out_a, final_a), (out_b, final_b) = jit_apply(
        rnn,
        lambda rnn, a, b, mask: (rnn(a, mask, return_final_state=True), rnn(b, mask, return_final_state=True)),
        batch_a, batch_b, mask,
    )
    # Same shapes, same real inputs: equal bit for bit.
    assert np.array_equal(np.asarray(out_a), np.asarray(out_b))
    assert np.array_equal(np.asarray(final_a), np.asarray(final_b))


def test_backward_direction_starts_at_each_sequences_last_real_token():
    rnn = RNN(2, 3, cell="gru", bidirectional=True, rngs=nnx.Rngs(0))
    sentence = jax.random.normal(jax.random.key(1), (LENGTH, 2))
    batch, mask = padded_batch(sentence, jax.random.key(2))
    outputs, final = jit_apply(rnn, lambda rnn, b, m: rnn(b, m, return_final_state=True), batch, mask)
    # The backward cell run by hand over the sentence reversed within its length.
    carry, by_hand = jnp.zeros((1, 3)), []
    for t in reversed(range(LENGTH)):
        carry, h = rnn.backward_cells[0](carry, sentence[None, t])
        by_hand.insert(0, h[0])
    np.testing.assert_allclose(outputs[1, :LENGTH, 3:], jnp.stack(by_hand), atol=1e-6)
    np.testing.assert_allclose(final[1, 3:], by_hand[0], atol=1e-6)  # backward final = after token 0


def test_final_state_of_padded_sequence_is_its_last_real_token_state():
    rnn = RNN(2, 3, cell="lstm", rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 6, 2))
    mask = jnp.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], jnp.float32)
    (outputs, final), (_, unpadded_final) = jit_apply(
        rnn, lambda rnn, x, m: (rnn(x, m, return_final_state=True), rnn(x[:1, :3], return_final_state=True)), x, mask
    )
    np.testing.assert_array_equal(final[0], outputs[0, 2])
    np.testing.assert_array_equal(final[1], outputs[1, 5])
    np.testing.assert_allclose(final[0], unpadded_final[0], atol=1e-6)


def test_rnn_under_jit_matches_eager_and_pads_get_no_gradient():
    rnn = RNN(3, 4, cell="lstm", num_layers=2, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 5, 3))
    mask = jnp.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], jnp.float32)
    graphdef, params = nnx.split(rnn)

    @jax.jit
    def loss(params, x):
        return jnp.sum(nnx.merge(graphdef, params)(x, mask) ** 2)

    np.testing.assert_allclose(loss(params, x), jnp.sum(rnn(x, mask) ** 2), rtol=1e-6)
    input_grad = jax.grad(loss, argnums=1)(params, x)
    assert np.all(np.asarray(input_grad[1, 2:]) == 0.0) and np.any(np.asarray(input_grad[1, :2]) != 0.0)


def test_unknown_cell_is_a_config_error():
    with pytest.raises(ConfigError, match=r"cell='transformer' is not a recurrent cell"):
        RNN(2, 3, cell="transformer", rngs=nnx.Rngs(0))


def test_tagger_with_char_features_is_padding_invariant():
    tagger = LSTMTagger(20, 5, 6, 7, char_vocab_size=12, char_embed_dim=4, char_hidden_dim=3, rngs=nnx.Rngs(0))
    tokens = jnp.array([[4, 5, 6, 0, 0], [7, 8, 9, 10, 11]], jnp.int32)
    mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], jnp.float32)
    chars = jax.random.randint(jax.random.key(1), (2, 5, 4), 4, 12)
    char_mask = jnp.broadcast_to(mask[..., None], (2, 5, 4)).at[:, :, 3].set(0.0)
    batch = {"tokens": tokens, "mask": mask, "chars": chars, "char_mask": char_mask}
    batched, alone = jit_apply(
        tagger, lambda tagger, batch: (tagger(batch), tagger({k: v[:1, :3] for k, v in batch.items()})), batch
    )
    assert batched.shape == (2, 5, 5)
    np.testing.assert_allclose(batched[0, :3], alone[0], atol=1e-6)


def test_language_model_logits_and_deterministic_sampling():
    model = RNNLanguageModel(11, 6, 8, num_layers=2, cell="gru", dropout=0.5, rngs=nnx.Rngs(0))
    tokens = jnp.array([[2, 5, 6, 3]], jnp.int32)
    train_logits = jit_apply(model, lambda m, t: m({"tokens": t}, rngs=nnx.Rngs(dropout=1)), tokens)
    assert train_logits.shape == (1, 4, 11)

    def eval_and_greedy(model, tokens):
        full = nnx.view(model, deterministic=True)({"tokens": tokens})
        return full, model.sample(jax.random.key(0), tokens[0, :1], 3, temperature=0.0)

    full, greedy = jit_apply(model, eval_and_greedy, tokens)
    # Sampling steps the carries one token at a time; greedy decoding must agree with the full pass.
    assert greedy.shape == (3,) and int(greedy[0]) == int(jnp.argmax(full[0, 0]))
    graphdef, state = nnx.split(model)
    sample = jax.jit(lambda state, key: nnx.merge(graphdef, state).sample(key, tokens, 6, temperature=1.5))
    first, again, other = sample(state, jax.random.key(7)), sample(state, jax.random.key(7)), sample(state, jax.random.key(8))
    assert first.shape == (1, 6) and first.dtype == jnp.int32
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_classifier_features_pooling_and_embed_attribute():
    model = RNNClassifier(15, 3, 4, 5, cell="rnn", bidirectional=True, pooling="mean", rngs=nnx.Rngs(0))
    assert isinstance(model.embed, nnx.Embed) and model.embed.embedding.shape == (15, 4)
    tokens = jnp.array([[4, 5, 6, 0], [7, 8, 9, 10]], jnp.int32)
    mask = jnp.array([[1, 1, 1, 0], [1, 1, 1, 1]], jnp.float32)
    features, alone, logits = jit_apply(
        model,
        lambda m, t, mask: (m.features({"tokens": t, "mask": mask}), m.features({"tokens": t[:1, :3]}), m({"tokens": t})),
        tokens, mask,
    )
    assert features.shape == (2, 10) and logits.shape == (2, 3)
    np.testing.assert_allclose(features[0], alone[0], atol=1e-6)
    with pytest.raises(ConfigError, match="pooling='max'"):
        RNNClassifier(15, 3, 4, 5, pooling="max", rngs=nnx.Rngs(0))
