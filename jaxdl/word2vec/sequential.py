"""word2vec.c's update, example by example: the pure-JAX form of the sequential update.

For every example of a batch in corpus order (skip-gram: each (centre, context)
pair; CBOW: each centre with the mean h of its context rows), word2vec.c does:
for the centre (label 1) and each noise word (label 0) t,
g = (label - σ(h · out[t])) · lr, error += g · out[t], out[t] += g · h; then
adds error to the context row(s). Later examples see earlier updates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

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


def sequential_update(params: Params, batch: Batch, lr: jax.Array) -> tuple[Params, dict]:
    """`sgns_update(update="sequential")` in pure JAX (where the C++ kernel is unavailable).

    Args:
        params: {"input", "output": float32 `[V, D]`}.
        batch: from `make_batch`; negatives `[B, 2W, K]` (skip-gram) or `[B, K]` (CBOW).
        lr: learning rate, float32 scalar.

    Returns:
        (new params, {"loss_sum", "pairs"}), the same loops as the C++ kernel.
    """
    centres, contexts, mask = batch["centres"], batch["contexts"], batch["context_mask"]
    negatives, negative_mask = batch["negatives"], batch["negative_mask"]
    window = contexts.shape[1]
    if negatives.ndim == 3:  # skip-gram: one example per (centre, context) pair
        def pair(i, carry):
            (inputs, outputs), loss, pairs = carry
            b, c = i // window, i % window
            row = contexts[b, c]
            tables, error, example_loss = _train_example(
                (inputs, outputs), inputs[row], centres[b], negatives[b, c], negative_mask[b, c], lr, mask[b, c])
            inputs, outputs = tables
            return (inputs.at[row].add(error), outputs), loss + example_loss, pairs + mask[b, c]

        zero = jnp.zeros((), jnp.float32)
        tables, loss, pairs = jax.lax.fori_loop(0, contexts.size, pair,
                                                ((params["input"], params["output"]), zero, zero))
        return {"input": tables[0], "output": tables[1]}, {"loss_sum": loss, "pairs": pairs}

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

    zero = jnp.zeros((), jnp.float32)
    tables, loss, pairs = jax.lax.fori_loop(0, centres.shape[0], centre,
                                            ((params["input"], params["output"]), zero, zero))
    return {"input": tables[0], "output": tables[1]}, {"loss_sum": loss, "pairs": pairs}
