"""Noise words from a counter-based hash: the draw of (key, example, k) needs no random stream.

The sequential update draws its K noise words per example inside the C++ kernel
(only for the examples that exist, with no `[B, 2W, K]` array in between); this
is the same draw in JAX, for the pure-JAX twin and for tests. Both compute it
with the same uint32 arithmetic, so both give the same words:

    u_j = fmix32(keys[k] + 0x9E3779B9 · (2·example + j + 1))   (j = 0, 1; uint32, wrapping)
    slot = u_0 mod V;  word = slot if (u_1 >> 8) · 2⁻²⁴ < accept[slot] else alias[slot]

fmix32 is MurmurHash3's finaliser (a bijection of uint32), and (accept, alias)
is the alias table of count^0.75 (`corpus.alias_table`), so a draw follows
word2vec.c's noise distribution up to the modulo's bias (below V / 2³²).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

GOLDEN = 0x9E3779B9


def fmix32(x: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finaliser of uint32 `x` (any shape)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def hashed_noise(keys: jax.Array, accept: jax.Array, alias: jax.Array, examples: int) -> jax.Array:
    """The noise words of examples 0 … examples-1: int32 `[examples, K]`.

    Args:
        keys: uint32 `[K]`, one key per noise index k (a batch's `noise_keys`).
        accept, alias: float32 / int32 `[V]`, the alias table of the noise distribution.
        examples: E; skip-gram numbers example (b, c) as b·2W + c, CBOW numbers centre b as b.
    """
    example = jnp.arange(examples, dtype=jnp.uint32)[:, None]
    counter = jnp.uint32(2) * example + jnp.uint32(1)
    base = keys.astype(jnp.uint32)[None, :]
    golden = jnp.uint32(GOLDEN)
    slot_bits = fmix32(base + golden * counter)
    accept_bits = fmix32(base + golden * (counter + jnp.uint32(1)))
    slot = (slot_bits % jnp.uint32(accept.shape[0])).astype(jnp.int32)
    uniform = (accept_bits >> 8).astype(jnp.float32) * jnp.float32(2.0 ** -24)
    return jnp.where(uniform < accept[slot], slot, alias[slot])
