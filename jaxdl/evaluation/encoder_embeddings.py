"""Sentence embeddings from a Transformer encoder, as sentence-transformers makes them.

``mean_pool`` averages the token states over the attention mask and optionally
L2-normalises (sentence-transformers' ``Pooling(mean)`` + ``Normalize``);
``encode_sentences`` runs a whole list through one jitted pure function,
sorted by length into a few padded shapes so that only a handful of programs
compile, and returns the vectors in input order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdl.errors import ConfigError, DataError

DEFAULT_BUCKETS = (16, 32, 64, 128)


def mean_pool(states: jax.Array, attention_mask: jax.Array, *, normalize: bool) -> jax.Array:
    """The mean of the token states over the mask, optionally L2-normalised.

    Args:
      states: float ``[B, T, H]`` token states.
      attention_mask: ``[B, T]``, 1 at tokens, 0 at padding.
      normalize: divide each vector by its L2 norm (at least 1e-12).
    Returns:
      float32 ``[B, H]``; a row with no token is all zeros, as sentence-transformers
      gives (its denominator is clamped to 1e-9).
    """
    mask = jnp.asarray(attention_mask, jnp.float32)[..., None]
    summed = jnp.sum(jnp.asarray(states, jnp.float32) * mask, axis=1)
    pooled = summed / jnp.maximum(jnp.sum(mask, axis=1), 1e-9)
    if normalize:
        pooled = pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
    return pooled


@functools.partial(jax.jit, static_argnames=("graphdef", "normalize"))
def pooled_embeddings(graphdef: nnx.GraphDef, state: nnx.State, input_ids: jax.Array,
                      attention_mask: jax.Array, token_type_ids: jax.Array, *,
                      normalize: bool) -> jax.Array:
    """``mean_pool(encoder(ids, mask, types))`` as a pure function of the split encoder.

    Args:
      graphdef, state: ``nnx.split(encoder)``.
      input_ids, attention_mask, token_type_ids: int32 ``[B, T]``.
      normalize: L2-normalise each vector.
    Returns:
      float32 ``[B, H]``; dropout off.
    """
    encoder = nnx.merge(graphdef, state)
    states = encoder(input_ids, attention_mask, token_type_ids, deterministic=True)
    return mean_pool(states, attention_mask, normalize=normalize)


def padded_width(length: int, buckets: Sequence[int]) -> int:
    """The smallest bucket that holds ``length`` tokens (``length`` itself past the last)."""
    for width in buckets:
        if length <= width:
            return width
    return length


def check_buckets(buckets: Sequence[int], longest: int) -> tuple[int, ...]:
    """The widths to pad to: ``buckets`` below ``longest``, sorted, then ``longest``.

    Args:
      buckets: candidate widths in tokens.
      longest: the longest sequence there can be (the tokenizer's ``max_length``,
        or the encoder's ``max_positions`` when that is smaller).
    Raises:
      ConfigError: a width that is not a positive integer, or no widths at all.
    """
    if not buckets or any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1
                          for b in buckets):
        raise ConfigError(f"encode_sentences buckets={tuple(buckets)!r}: expected positive "
                          "integer widths, e.g. (16, 32, 64, 128)")
    return tuple(sorted({int(b) for b in buckets if b < longest})) + (int(longest),)


def encode_sentences(encoder: nnx.Module, tokenizer, sentences: Sequence[str], *,
                     batch_size: int = 64, normalize: bool = True,
                     buckets: Sequence[int] = DEFAULT_BUCKETS) -> np.ndarray:
    """Mean-pooled sentence vectors of ``sentences``, in input order.

    Sentences are sorted by token count and cut into batches of ``batch_size``;
    each batch is padded to the smallest bucket that holds its longest sentence
    (and, the last one, to ``batch_size`` rows), so at most ``len(buckets) + 1``
    shapes reach the compiler. Padding never changes a vector: padded keys are
    masked out of attention and padded positions out of the mean.

    Args:
      encoder: a ``TransformerEncoder`` (dropout is off here).
      tokenizer: a ``BertTokenizer`` (its ``max_length`` truncates).
      sentences: N strings.
      batch_size: sentences per compiled call.
      normalize: L2-normalise each vector (sentence-transformers' ``Normalize``).
      buckets: padded widths in tokens; widths from ``min(tokenizer.max_length,
        encoder.config.max_positions)`` up are replaced by that one.
    Returns:
      float32 ``[N, H]``.
    Raises:
      ConfigError: a bad ``batch_size`` or ``buckets``.
      DataError: no sentences.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"encode_sentences batch_size={batch_size!r}: expected a positive "
                          "integer")
    if len(sentences) == 0:
        raise DataError("encode_sentences: no sentences; expected at least one string")
    widths = check_buckets(buckets, min(tokenizer.max_length, encoder.config.max_positions))
    lengths = tokenizer.lengths(sentences)
    order = np.argsort(lengths, kind="stable")
    graphdef, state = nnx.split(encoder)
    out = np.zeros((len(sentences), encoder.config.hidden_size), np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = padded_width(int(lengths[rows].max()), widths)
        batch = tokenizer.encode([sentences[i] for i in rows], pad_to=width)
        # Padding rows (all-zero masks) keep the batch shape fixed; their output is dropped.
        arrays = [np.pad(batch[k], ((0, batch_size - len(rows)), (0, 0)))
                  for k in ("input_ids", "attention_mask", "token_type_ids")]
        vectors = pooled_embeddings(graphdef, state, *arrays, normalize=normalize)
        out[rows] = np.asarray(vectors)[:len(rows)]
    return out
