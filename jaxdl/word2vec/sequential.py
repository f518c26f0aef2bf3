"""word2vec.c's update, example by example: the pure-JAX form of the sequential update.

For every example of a batch in corpus order (skip-gram: each (centre, context)
pair; CBOW: each centre with the mean h of its context rows), word2vec.c does:
for the centre (label 1) and each noise word (label 0) t,
g = (label - σ(h · out[t])) · lr, error += g · out[t], out[t] += g · h; then
adds error to the context row(s). Later examples see earlier updates. The
noise words come from `noise.hashed_noise`, as the C++ kernel draws them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxdl.word2vec.noise import hashed_noise

Params = dict[str, jax.Array]
Batch = dict[str, jax.Array]
MAX_EXP = 6.0  # word2vec.c's sigmoid table range


def sigmoid_table(x: jax.Array) -> jax.Array:
    """σ(x), 0 below -MAX_EXP and 1 above, as word2vec.c's look-up table clamps it."""
    return jnp.where(x > MAX_EXP, 1.0, jnp.where(x < -MAX_EXP, 0.0, jax.nn.sigmoid(x)))


def _train_example(tables, h, centre, noise, noise_mask, lr, weight):
    """word2vec.c's inner loop for one example: h against the centre (label 1), then each noise word.

    Returns:
        ((inputs, outputs with the output rows updated), error `[D]` for the input rows, loss).
    """
    inputs, outputs = tables
    error = jnp.zeros_like(h)
    loss = jnp.zeros((), jnp.float32)
    for d in range(noise.shape[0] + 1):
        target = centre if d == 0 else noise[d - 1]
        w = weight if d == 0 else weight * noise_mask[d - 1]
        row = outputs[target]
        score = jnp.dot(h, row)
        gain = ((1.0 if d == 0 else 0.0) - sigmoid_table(score)) * lr * w
        error = error + gain * row
        outputs = outputs.at[target].add(gain * h)
        loss = loss - w * jax.nn.log_sigmoid(score if d == 0 else -score)
    return (inputs, outputs), error, loss


def _train_centres(tables, batch, negatives, negative_mask, lr, first, last):
    """Centres [first, last) (ints or int32 scalars) of the batch, example by example: (tables, loss, examples)."""
    centres, contexts, mask = batch["centres"], batch["contexts"], batch["context_mask"]
    window = contexts.shape[1]
    zero = jnp.zeros((), jnp.float32)
    if negatives.ndim == 3:  # skip-gram: one example per (centre, context) pair
        def pair(i, carry):
            (inputs, outputs), loss, pairs = carry
            b, c = i // window, i % window
            row = contexts[b, c]
            tables, error, example_loss = _train_example(
                (inputs, outputs), inputs[row], centres[b], negatives[b, c], negative_mask[b, c], lr, mask[b, c])
            inputs, outputs = tables
            return (inputs.at[row].add(error), outputs), loss + example_loss, pairs + mask[b, c]

        return jax.lax.fori_loop(first * window, last * window, pair, (tables, zero, zero))

    def centre(b, carry):  # CBOW: one example per centre, from the mean of its context rows
        (inputs, outputs), loss, pairs = carry
        count = mask[b].sum()
        weight = (count > 0).astype(jnp.float32)
        h = (inputs[contexts[b]] * mask[b][:, None]).sum(0) / jnp.maximum(count, 1.0)
        (inputs, outputs), error, example_loss = _train_example(
            (inputs, outputs), h, centres[b], negatives[b], negative_mask[b], lr, weight)
        # word2vec.c adds the whole error to each context row (not divided by the count).
        for c in range(window):
            inputs = inputs.at[contexts[b, c]].add(error * mask[b, c])
        return (inputs, outputs), loss + example_loss, pairs + weight

    return jax.lax.fori_loop(first, last, centre, (tables, zero, zero))


def batch_negatives(batch: Batch, *, sg: bool) -> tuple[jax.Array, jax.Array]:
    """The noise words the sequential kernel draws for `batch` and their mask (≠ the centre).

    Returns:
        int32 and float32 `[B, 2W, K]` (skip-gram) or `[B, K]` (CBOW).
    """
    centres, contexts = batch["centres"], batch["contexts"]
    examples = contexts.size if sg else centres.shape[0]
    noise = hashed_noise(batch["noise_keys"], batch["noise_accept"], batch["noise_alias"], examples)
    if sg:
        noise = noise.reshape(contexts.shape + noise.shape[-1:])
    centre_axes = (slice(None),) + (None,) * (noise.ndim - 1)
    return noise, (noise != centres[centre_axes]).astype(jnp.float32)


def chunk_bounds(batch: Batch, chunks: int, *, sg: bool) -> jax.Array:
    """Where the batch's `chunks` runs start: int32 `[chunks + 1]`, 0 first, B last.

    Run c trains centres [bounds[c], bounds[c + 1]); bounds[c] is the first centre b
    with examples(0 … b-1) · chunks ≥ total · c, an example being an unmasked
    (centre, context) slot (skip-gram) or a centre with any (CBOW). The runs share
    the examples evenly wherever the masks put them (the corpus padding fills a
    batch's last streams), as the C++ kernel's `ChunkBounds` splits them.
    """
    unmasked = (batch["context_mask"] != 0).sum(axis=1)
    examples = unmasked if sg else (unmasked > 0).astype(unmasked.dtype)
    before = jnp.concatenate([jnp.zeros((1,), examples.dtype), jnp.cumsum(examples)])  # [B + 1]
    shares = before[-1] * jnp.arange(chunks + 1)
    return jnp.searchsorted(before * chunks, shares, side="left").astype(jnp.int32).at[-1].set(examples.shape[0])


def sequential_update(params: Params, batch: Batch, lr: jax.Array, *, sg: bool,
                      chunks: int = 1) -> tuple[Params, dict]:
    """`sgns_update(update="sequential")` in pure JAX (where the C++ kernel is unavailable).

    The same loops, noise words and chunking as the C++ kernel: the batch's
    centres in `chunks` contiguous runs of about as many examples each
    (`chunk_bounds`), each trained from the batch-start
    tables; the first run's tables, plus each later run's change (run − start)
    in run order, are the result. The
    result equals the kernel's up to the rounding of the dot products (XLA and
    the kernel sum a row's products in different orders).

    Args:
        params: {"input", "output": float32 `[V, D]`}.
        batch: from `make_batch(..., hashed_noise=True)`.
        lr: learning rate, float32 scalar.
        sg: skip-gram, else CBOW.
        chunks: runs of centres (1 = one run updating the tables as it goes).

    Returns:
        (new params, {"loss_sum", "pairs"}).
    """
    negatives, negative_mask = batch_negatives(batch, sg=sg)
    start = (params["input"], params["output"])
    size = batch["centres"].shape[0]
    if chunks == 1:
        tables, loss, pairs = _train_centres(start, batch, negatives, negative_mask, lr, 0, size)
        return {"input": tables[0], "output": tables[1]}, {"loss_sum": loss, "pairs": pairs}
    bounds = chunk_bounds(batch, chunks, sg=sg)
    total, loss, pairs = _train_centres(start, batch, negatives, negative_mask, lr, bounds[0], bounds[1])
    for c in range(1, chunks):
        tables, chunk_loss, chunk_pairs = _train_centres(
            start, batch, negatives, negative_mask, lr, bounds[c], bounds[c + 1])
        total = [t + (new - old) for t, new, old in zip(total, tables, start)]
        loss, pairs = loss + chunk_loss, pairs + chunk_pairs
    return {"input": total[0], "output": total[1]}, {"loss_sum": loss, "pairs": pairs}
