"""word2vec (skip-gram and CBOW with negative sampling) as pure, jit-able JAX functions.

Semantics follow the reference word2vec.c (and gensim):

* sub-sampling: a position is kept with probability `keep_probability[word]`,
  decided before windowing, so a window spans over discarded words;
* dynamic window: each centre draws b uniformly in [1, window] and uses the b
  nearest kept words on each side inside its sentence;
* skip-gram: each (centre, context) pair trains the context word's input vector to
  predict the centre word's output vector against `negative` noise words drawn
  from count^0.75, a draw equal to the centre being skipped; CBOW: the mean of the
  context input vectors predicts the centre;
* σ is taken as 0 / 1 beyond |x| > 6 as word2vec.c's lookup table does.

Batching: a batch is the `step`-th chunk of `batch_centres` consecutive corpus
positions in an epoch's pass (epoch = step // steps_per_epoch), with randomness
from `(key, step)` only, so a batch is a pure function of (seed, step) and resume
is exact. Updates are sparse SGD: each gathered row receives the *sum* of its
per-pair updates (`.at[idx].add`), i.e. what word2vec.c's lock-free threads do
when they apply the pairs of a batch against the same stale parameters.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxdl.models.word2vec_corpus import Word2VecArrays

Params = dict[str, jax.Array]
Batch = dict[str, jax.Array]
_MAX_EXP = 6.0  # word2vec.c's sigmoid table range


def init_params(key: jax.Array, vocab_size: int, dim: int) -> Params:
    """word2vec.c's initialisation: input uniform in [-0.5/D, 0.5/D), output zeros.

    Returns:
        {"input": float32 `[V, D]`, "output": float32 `[V, D]`}.
    """
    return {
        "input": jax.random.uniform(key, (vocab_size, dim), jnp.float32, -0.5 / dim, 0.5 / dim),
        "output": jnp.zeros((vocab_size, dim), jnp.float32),
    }


def _uniform_for_positions(key: jax.Array, first_block: jax.Array, block: int) -> jax.Array:
    """Uniforms `[3 * block]` for padded positions [first_block·block, (first_block+3)·block).

    Each block of positions has its own key, so a position's draw is the same
    whichever batch's margin it falls in.
    """
    draws = [jax.random.uniform(jax.random.fold_in(key, first_block + j), (block,)) for j in range(3)]
    return jnp.concatenate(draws)


@functools.partial(jax.jit, static_argnames=("batch_centres", "window", "negative", "sg", "margin"))
def make_batch(
    corpus: Word2VecArrays,
    key: jax.Array,
    step: jax.Array | int,
    *,
    batch_centres: int,
    window: int,
    negative: int,
    sg: bool = True,
    margin: int | None = None,
) -> Batch:
    """The training batch of `step`, a pure function of (corpus, key, step).

    Args:
        corpus: device arrays from `Word2VecCorpus.device_arrays(batch_centres=B, ...)`.
        key: the run's PRNG key.
        step: global step; epoch = step // steps_per_epoch.
        batch_centres: B, centre positions per batch (must match the arrays' padding).
        window: maximum window half-width W.
        negative: K, noise words per (centre, context) pair (skip-gram) or per centre (CBOW).
        sg: skip-gram (else CBOW) negatives layout.
        margin: corpus positions read on each side of the chunk to find kept context
            words (default 8·W, at most B); a window is cut where the margin ends.

    Returns:
        dict with `centres` int32 `[B]`, `contexts` int32 `[B, 2W]`, `context_mask`
        float32 `[B, 2W]`, `negatives` int32 `[B, 2W, K]` (sg) or `[B, K]` (CBOW),
        `negative_mask` float32 of the same shape, `words` int32 scalar (corpus
        positions in this chunk).
    """
    block = batch_centres
    margin = min(8 * window if margin is None else margin, block)
    steps_per_epoch = corpus.ids.shape[0] // block - 2
    step = jnp.asarray(step, jnp.int32)
    epoch, chunk = step // steps_per_epoch, step % steps_per_epoch
    subsample_key, step_key = jax.random.split(key)
    window_key, negative_key = jax.random.split(jax.random.fold_in(step_key, step))

    # Extended chunk: `margin` positions, the B centre positions, `margin` positions.
    length = block + 2 * margin
    start = (chunk + 1) * block - margin
    ids = jax.lax.dynamic_slice(corpus.ids, (start,), (length,))
    sentence = jax.lax.dynamic_slice(corpus.sentence_ids, (start,), (length,))
    uniform = _uniform_for_positions(jax.random.fold_in(subsample_key, epoch), chunk, block)
    uniform = jax.lax.dynamic_slice(uniform, (block - margin,), (length,))
    keep = (uniform < corpus.keep_probability[ids]) & (sentence >= 0)

    # Compact the kept positions so that "the b nearest kept words" are rank offsets.
    rank = jnp.cumsum(keep) - 1
    num_kept = rank[-1] + 1
    positions = jnp.arange(length, dtype=jnp.int32)
    compact = jnp.zeros(length, jnp.int32).at[jnp.where(keep, rank, length)].set(positions, mode="drop")

    centre_slice = slice(margin, margin + block)
    centres, centre_sentence = ids[centre_slice], sentence[centre_slice]
    offsets = jnp.concatenate([jnp.arange(-window, 0), jnp.arange(1, window + 1)])
    context_rank = rank[centre_slice, None] + offsets[None, :]
    in_range = (context_rank >= 0) & (context_rank < num_kept)
    context_position = compact[jnp.clip(context_rank, 0, length - 1)]
    reduced_window = jax.random.randint(window_key, (block, 1), 1, window + 1)
    context_mask = (
        keep[centre_slice, None]
        & in_range
        & (sentence[context_position] == centre_sentence[:, None])
        & (jnp.abs(offsets)[None, :] <= reduced_window)
    )

    noise_shape = (block, 2 * window, negative) if sg else (block, negative)
    draws = jax.random.uniform(negative_key, noise_shape)
    negatives = jnp.minimum(jnp.searchsorted(corpus.noise_cdf, draws, side="right"), corpus.noise_cdf.shape[0] - 1)
    negatives = negatives.astype(jnp.int32)
    centre_axes = (slice(None),) + (None,) * (len(noise_shape) - 1)
    return {
        "centres": centres,
        "contexts": ids[context_position],
        "context_mask": context_mask.astype(jnp.float32),
        "negatives": negatives,
        "negative_mask": (negatives != centres[centre_axes]).astype(jnp.float32),
        "words": jnp.sum(centre_sentence >= 0, dtype=jnp.int32),
    }


def _sigmoid_table(x: jax.Array) -> jax.Array:
    return jnp.where(x > _MAX_EXP, 1.0, jnp.where(x < -_MAX_EXP, 0.0, jax.nn.sigmoid(x)))


def _log_sigmoid_loss(positive: jax.Array, negative: jax.Array) -> jax.Array:
    return -jax.nn.log_sigmoid(positive), -jax.nn.log_sigmoid(-negative)


@functools.partial(jax.jit, static_argnames=("sg",), donate_argnums=(0,))
def sgns_update(params: Params, batch: Batch, lr: jax.Array | float, *, sg: bool = True) -> tuple[Params, dict]:
    """One sparse SGD step of negative sampling on the rows the batch touches.

    Only the gathered rows are read and updated (`.at[idx].add`); no dense gradient
    of the `[V, D]` tables is formed. `params` is donated.

    Args:
        params: {"input": `[V, D]`, "output": `[V, D]`}.
        batch: from `make_batch` (same `sg`).
        lr: learning rate of this step.
        sg: skip-gram (else CBOW with the mean of the context vectors).

    Returns:
        (new params, stats) with stats `loss_sum` (summed negative log-likelihood)
        and `pairs` (number of trained (input, centre) examples).
    """
    inputs, outputs = params["input"], params["output"]
    centres, contexts = batch["centres"], batch["contexts"]
    mask, negative_mask = batch["context_mask"], batch["negative_mask"]
    vocab_dim = inputs.shape[1]
    context_vectors = inputs[contexts]  # [B, C, D]
    positive_vectors = outputs[centres]  # [B, D]
    negative_vectors = outputs[batch["negatives"]]  # sg [B, C, K, D]; cbow [B, K, D]
    if sg:
        hidden, example_mask = context_vectors, mask  # [B, C, D], [B, C]
        positive_score = jnp.einsum("bcd,bd->bc", hidden, positive_vectors)
        negative_score = jnp.einsum("bcd,bckd->bck", hidden, negative_vectors)
    else:
        count = mask.sum(axis=1)
        hidden = jnp.einsum("bcd,bc->bd", context_vectors, mask) / jnp.maximum(count, 1.0)[:, None]
        example_mask = (count > 0).astype(jnp.float32)  # [B]
        positive_score = jnp.einsum("bd,bd->b", hidden, positive_vectors)
        negative_score = jnp.einsum("bd,bkd->bk", hidden, negative_vectors)
    positive_gain = (1.0 - _sigmoid_table(positive_score)) * lr * example_mask
    negative_gain = -_sigmoid_table(negative_score) * lr * example_mask[..., None] * negative_mask
    hidden_error = positive_gain[..., None] * positive_vectors[:, None, :] if sg else positive_gain[:, None] * positive_vectors
    hidden_error += jnp.einsum("...k,...kd->...d", negative_gain, negative_vectors)
    if sg:
        input_update = hidden_error  # [B, C, D]
        positive_update = jnp.einsum("bc,bcd->bd", positive_gain, hidden)
    else:
        # word2vec.c adds the full error to every context word (not divided by the count).
        input_update = hidden_error[:, None, :] * mask[..., None]
        positive_update = positive_gain[:, None] * hidden
    negative_update = negative_gain[..., None] * hidden[..., None, :]
    output_rows = jnp.concatenate([centres, batch["negatives"].reshape(-1)])
    output_update = jnp.concatenate([positive_update, negative_update.reshape(-1, vocab_dim)])
    new_params = {
        "input": inputs.at[contexts.reshape(-1)].add(input_update.reshape(-1, vocab_dim)),
        "output": outputs.at[output_rows].add(output_update),
    }
    positive_loss, negative_loss = _log_sigmoid_loss(positive_score, negative_score)
    loss = (positive_loss + (negative_loss * negative_mask).sum(-1)) * example_mask
    return new_params, {"loss_sum": loss.sum(), "pairs": example_mask.sum()}
