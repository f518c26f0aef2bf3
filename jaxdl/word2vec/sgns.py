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

from jaxdl.kernels import sgns_update as sgns_kernel
from jaxdl.word2vec.corpus import Word2VecArrays
from jaxdl.word2vec.sequential import Batch, Params, sequential_update, sigmoid_table



def init_params(key: jax.Array, vocab_size: int, dim: int) -> Params:
    """word2vec.c's initialisation: input uniform in [-0.5/D, 0.5/D), output zeros.

    Returns:
        {"input": float32 `[V, D]`, "output": float32 `[V, D]`}.
    """
    return {
        "input": jax.random.uniform(key, (vocab_size, dim), jnp.float32, -0.5 / dim, 0.5 / dim),
        "output": jnp.zeros((vocab_size, dim), jnp.float32),
    }


def _uniform_for_positions(key: jax.Array, first_block: jax.Array, block: int, count: int = 3) -> jax.Array:
    """Uniforms `[count * block]` for padded positions [first_block·block, (first_block+count)·block).

    Each block of positions has its own key, so a position's draw is the same
    whichever batch's margin it falls in.
    """
    draws = [jax.random.uniform(jax.random.fold_in(key, first_block + j), (block,)) for j in range(count)]
    return jnp.concatenate(draws)


def _stream_windows(ids, sentence, uniform, keep_probability, reduced_window, *, window: int, margin: int):
    """One stream's centres and windows from its extended chunk (`margin` + b centres + `margin`).

    Args:
        ids, sentence: int32 `[b + 2·margin]` word and sentence ids of the positions.
        uniform: float32 `[b + 2·margin]` the positions' sub-sampling draws.
        keep_probability: float32 `[V]`.
        reduced_window: int32 `[b, 1]` each centre's window half-width in [1, window].

    Returns:
        (centres int32 `[b]`, contexts int32 `[b, 2W]`, context_mask bool `[b, 2W]`, words int32).
    """
    length = ids.shape[0]
    block = length - 2 * margin
    keep = (uniform < keep_probability[ids]) & (sentence >= 0)
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
    context_mask = (
        keep[centre_slice, None]
        & in_range
        & (sentence[context_position] == centre_sentence[:, None])
        & (jnp.abs(offsets)[None, :] <= reduced_window)
    )
    return centres, ids[context_position], context_mask, jnp.sum(centre_sentence >= 0, dtype=jnp.int32)


@functools.partial(jax.jit, static_argnames=("batch_centres", "window", "negative", "sg", "shared_negatives", "margin",
                                             "hashed_noise", "streams"))
def make_batch(
    corpus: Word2VecArrays,
    key: jax.Array,
    step: jax.Array | int,
    *,
    batch_centres: int,
    window: int,
    negative: int,
    sg: bool = True,
    shared_negatives: bool = False,
    margin: int | None = None,
    steps_per_epoch: int | None = None,
    hashed_noise: bool = False,
    streams: int = 1,
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
        shared_negatives: skip-gram only: draw K noise words per centre, shared by
            the pairs of its window, instead of K per pair as word2vec.c. The
            expected update is the same; it moves 2W times fewer noise rows.
        margin: corpus positions read on each side of a stream's chunk to find kept
            context words (default 8·W, at most B); a window is cut where the margin ends.
        steps_per_epoch: given when `corpus.ids` / `sentence_ids` hold only this
            step's extended chunks (`[streams, B / streams + 2·margin]`, or
            `[B + 2·margin]` for one stream, streamed from the host) instead of the
            whole padded corpus; None derives it from their length.
        hashed_noise: leave the noise words to the update (the sequential one draws
            them itself, see `noise.hashed_noise`): the batch then carries
            `noise_keys` uint32 `[K]`, `noise_accept` float32 `[V]` and `noise_alias`
            int32 `[V]` instead of `negatives` and `negative_mask`.
        streams: S, contiguous spans an epoch's positions are split into (span s
            = padded positions B + s·steps_per_epoch·b onwards, b = B / S); the batch
            holds b consecutive centres of each span in span order, as word2vec.c's
            S threads each train their own part of the file. 1 = the whole batch
            is B consecutive positions.

    Returns:
        dict with `centres` int32 `[B]`, `contexts` int32 `[B, 2W]`, `context_mask`
        float32 `[B, 2W]`, `negatives` int32 `[B, 2W, K]` (sg) or `[B, K]` (CBOW or shared),
        `negative_mask` float32 of the same shape, `words` int32 scalar (corpus
        positions in this batch).
    """
    if batch_centres % streams:
        raise ValueError(f"make_batch: batch_centres={batch_centres} is not a multiple of streams={streams}")
    block = batch_centres // streams  # b, centres per stream
    margin = min(8 * window if margin is None else margin, batch_centres)
    if steps_per_epoch is None:
        steps_per_epoch = corpus.ids.shape[0] // batch_centres - 2
    step = jnp.asarray(step, jnp.int32)
    epoch, chunk = step // steps_per_epoch, step % steps_per_epoch
    subsample_key, step_key = jax.random.split(key)
    window_key, negative_key = jax.random.split(jax.random.fold_in(step_key, step))

    # Each stream's extended chunk: `margin` positions, its b centre positions, `margin` positions.
    length = block + 2 * margin
    # Block index (in units of b) of each stream's first centre in the padded layout.
    first = streams + jnp.arange(streams, dtype=jnp.int32) * steps_per_epoch + chunk
    if corpus.ids.shape[-1] == length and (corpus.ids.ndim == 2 or streams == 1):
        # Streamed: exactly the extended chunks.
        ids = corpus.ids.reshape(streams, length)
        sentence = corpus.sentence_ids.reshape(streams, length)
    else:
        index = (first * block - margin)[:, None] + jnp.arange(length, dtype=jnp.int32)[None, :]
        ids, sentence = jnp.take(corpus.ids, index, axis=0), jnp.take(corpus.sentence_ids, index, axis=0)
    epoch_key = jax.random.fold_in(subsample_key, epoch)
    side = -(-margin // block)  # blocks of b positions the margin reaches into on each side
    uniform = jax.vmap(lambda f: jax.lax.dynamic_slice(
        _uniform_for_positions(epoch_key, f - side, block, 2 * side + 1), (side * block - margin,), (length,)))(first)
    reduced_window = jax.random.randint(window_key, (batch_centres, 1), 1, window + 1)
    centres, contexts, context_mask, words = jax.vmap(
        functools.partial(_stream_windows, window=window, margin=margin), in_axes=(0, 0, 0, None, 0))(
        ids, sentence, uniform, corpus.keep_probability, reduced_window.reshape(streams, block, 1))

    centres = centres.reshape(batch_centres)
    batch = {
        "centres": centres,
        "contexts": contexts.reshape(batch_centres, 2 * window),
        "context_mask": context_mask.reshape(batch_centres, 2 * window).astype(jnp.float32),
        "words": words.sum(),
    }
    if hashed_noise:
        return {**batch, "noise_keys": jax.random.bits(negative_key, (negative,), jnp.uint32),
                "noise_accept": corpus.noise_accept, "noise_alias": corpus.noise_alias}
    noise_shape = (batch_centres, 2 * window, negative) if (sg and not shared_negatives) else (batch_centres, negative)
    negatives = _draw_noise(negative_key, corpus, noise_shape)
    centre_axes = (slice(None),) + (None,) * (len(noise_shape) - 1)
    return {**batch, "negatives": negatives,
            "negative_mask": (negatives != centres[centre_axes]).astype(jnp.float32)}


def _draw_noise(key: jax.Array, corpus: Word2VecArrays, shape: tuple[int, ...]) -> jax.Array:
    """Words ∝ count^0.75 by the alias method: a uniform slot, then it or its alias."""
    slot_key, accept_key = jax.random.split(key)
    vocab_size = corpus.noise_accept.shape[0]
    slot = jax.random.randint(slot_key, shape, 0, vocab_size, dtype=jnp.int32)
    accepted = jax.random.uniform(accept_key, shape) < corpus.noise_accept[slot]
    return jnp.where(accepted, slot, corpus.noise_alias[slot])


def _capped_row_add(table: jax.Array, rows: jax.Array, updates: jax.Array, counts: jax.Array, cap: float):
    """table.at[rows].add(updates · min(1, cap / count[row])), counts `[V]` per-row contributions.

    A row with at most `cap` contributions in the batch gets their plain sum, as
    word2vec.c would apply them one after the other; a row hit more often (a
    frequent word in a large batch) gets their mean times `cap`, because summing
    hundreds of updates computed from the same stale row diverges.
    """
    scale = jnp.minimum(1.0, cap / jnp.maximum(counts, 1.0))
    return table.at[rows].add(updates * _rows(scale, rows)[:, None], mode="promise_in_bounds")


def _rows(table: jax.Array, ids: jax.Array) -> jax.Array:
    # Ids are valid by construction; "clip" skips the bounds masks of plain indexing.
    return jnp.take(table, ids, axis=0, mode="clip")


@functools.partial(jax.jit, static_argnames=("sg", "update", "row_cap", "chunks", "lock_free"),
                   donate_argnums=(0,))
def sgns_update(
    params: Params, batch: Batch, lr: jax.Array | float, *, sg: bool = True, update: str = "batched",
    row_cap: float = 16.0, chunks: int = 1, lock_free: bool = False,
) -> tuple[Params, dict]:
    """One sparse SGD step of negative sampling on the rows the batch touches.

    Only the gathered rows are read and updated (`.at[idx].add`); no dense gradient
    of the `[V, D]` tables is formed. Each row gets the sum of its per-example
    updates, scaled down to `row_cap` contributions' worth when it has more (see
    `_capped_row_add`). `params` is donated.

    Args:
        params: {"input": `[V, D]`, "output": `[V, D]`}.
        batch: from `make_batch` (same `sg`); negatives `[B, 2W, K]` (per pair) or
            `[B, K]` (shared by the window in skip-gram; CBOW).
        lr: learning rate of this step.
        sg: skip-gram (else CBOW with the mean of the context vectors).
        update: "batched" (the sparse summed update described above) or
            "sequential": the batch's examples applied one after another in corpus
            order, each against the tables as the previous one left them, exactly
            word2vec.c's per-thread loop, with K noise words per example drawn by the
            update (the batch from `make_batch(..., hashed_noise=True)`); `row_cap`
            does not apply.
        row_cap: batched: contributions per row per batch applied at full strength.
        chunks: sequential: the batch's centres in this many contiguous runs, each
            trained from the batch-start tables: the first in place, the others on
            copies whose changes are then added in run order (runs go to separate
            threads in the C++ kernel; the bits do not depend on how many).
            1 = word2vec.c's single thread.
        lock_free: sequential, C++ kernel only: the runs update the shared tables
            in place at once (Hogwild, word2vec.c's threads) instead of private
            copies merged in order; faster, and the bits depend on thread timing.
            The pure-JAX path has no threads and computes the merged runs.

    Returns:
        (new params, stats) with stats `loss_sum` (summed negative log-likelihood)
        and `pairs` (number of trained examples: pairs in skip-gram, centres in CBOW).
    """
    if update == "sequential":
        if "noise_keys" not in batch:
            raise ValueError(f"sequential update: the batch has no noise_keys (keys {sorted(batch)}); "
                             "build it with make_batch(..., hashed_noise=True)")
        if sgns_kernel.sequential_usable(params):
            return sgns_kernel.sgns_sequential(params, batch, lr, sg=sg, chunks=chunks, lock_free=lock_free)
        return sequential_update(params, batch, jnp.asarray(lr, jnp.float32), sg=sg, chunks=chunks)
    if sgns_kernel.usable(params, batch, sg=sg):
        return sgns_kernel.sgns_update(params, batch, lr, row_cap=row_cap)
    inputs, outputs = params["input"], params["output"]
    centres, contexts, negatives = batch["centres"], batch["contexts"], batch["negatives"]
    mask = batch["context_mask"]
    vocab_size, dim = inputs.shape
    context_vectors = _rows(inputs, contexts)  # [B, C, D]
    positive_vectors = _rows(outputs, centres)  # [B, D]
    negative_vectors = _rows(outputs, negatives)  # [B, C, K, D] per pair, else [B, K, D]
    per_pair = negatives.ndim == 3
    if sg:
        hidden, example_mask = context_vectors, mask  # [B, C, D], [B, C]
        positive_score = jnp.einsum("bcd,bd->bc", hidden, positive_vectors)
        noise_spec = "bckd" if per_pair else "bkd"
        negative_score = jnp.einsum(f"bcd,{noise_spec}->bck", hidden, negative_vectors)
        negative_mask = batch["negative_mask"] if per_pair else batch["negative_mask"][:, None, :]
    else:
        count = mask.sum(axis=1)
        hidden = jnp.einsum("bcd,bc->bd", context_vectors, mask) / jnp.maximum(count, 1.0)[:, None]
        example_mask = (count > 0).astype(jnp.float32)  # [B]
        positive_score = jnp.einsum("bd,bd->b", hidden, positive_vectors)
        negative_score = jnp.einsum("bd,bkd->bk", hidden, negative_vectors)
        negative_mask = batch["negative_mask"]
    positive_gain = (1.0 - sigmoid_table(positive_score)) * lr * example_mask
    negative_gain = -sigmoid_table(negative_score) * lr * example_mask[..., None] * negative_mask
    if sg:
        hidden_error = positive_gain[..., None] * positive_vectors[:, None, :]
        hidden_error += jnp.einsum(f"bck,{noise_spec}->bcd", negative_gain, negative_vectors)
        input_update, input_weight = hidden_error, mask  # [B, C, D], [B, C]
        positive_update = jnp.einsum("bc,bcd->bd", positive_gain, hidden)
        if per_pair:
            negative_update = negative_gain[..., None] * hidden[:, :, None, :]  # [B, C, K, D]
            negative_weight = example_mask[..., None] * negative_mask
        else:
            negative_update = jnp.einsum("bck,bcd->bkd", negative_gain, hidden)  # [B, K, D]
            negative_weight = (example_mask[..., None] * negative_mask).sum(axis=1)
        positive_weight = mask.sum(axis=1)
    else:
        hidden_error = positive_gain[:, None] * positive_vectors
        hidden_error += jnp.einsum("bk,bkd->bd", negative_gain, negative_vectors)
        # word2vec.c adds the full error to every context word (not divided by the count).
        input_update, input_weight = hidden_error[:, None, :] * mask[..., None], mask
        positive_update = positive_gain[:, None] * hidden
        negative_update = negative_gain[..., None] * hidden[:, None, :]
        negative_weight = example_mask[:, None] * negative_mask
        positive_weight = example_mask
    output_rows = jnp.concatenate([centres, negatives.reshape(-1)])
    output_weight = jnp.concatenate([positive_weight, negative_weight.reshape(-1)])
    input_rows = contexts.reshape(-1)
    input_counts = jnp.zeros(vocab_size, jnp.float32).at[input_rows].add(
        input_weight.reshape(-1), mode="promise_in_bounds")
    output_counts = jnp.zeros(vocab_size, jnp.float32).at[output_rows].add(
        output_weight, mode="promise_in_bounds")
    new_params = {
        "input": _capped_row_add(inputs, input_rows, input_update.reshape(-1, dim), input_counts, row_cap),
        "output": _capped_row_add(
            outputs, output_rows,
            jnp.concatenate([positive_update, negative_update.reshape(-1, dim)]), output_counts, row_cap),
    }
    positive_loss = -jax.nn.log_sigmoid(positive_score)
    negative_loss = -jax.nn.log_sigmoid(-negative_score) * negative_mask
    loss = (positive_loss + negative_loss.sum(-1)) * example_mask
    return new_params, {"loss_sum": loss.sum(), "pairs": example_mask.sum()}

