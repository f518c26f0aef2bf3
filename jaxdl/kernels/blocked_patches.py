"""The blocked patch matrix of `jaxdl.ops.conv_blocked`, copied by a small C++ kernel.

`stack_patches` is the pure-JAX definition: `kh * groups` strided slices of the
grouped image, stacked. XLA:CPU runs it slowly (each slice is a loop over short
rows, then the concatenate copies it all again). `blocked_patches.cc` copies the
same values with one `memcpy` per kernel row over XLA's thread pool (figures in
docs/VISION_RESULTS.md). The values are copies either way, so both paths give
bitwise identical patches, and the gradient (the transpose of the copy) is
always the pure-JAX one.

The kernel is compiled on first use and cached (`jaxdl.kernels.build`); without
a compiler, or with `JAXDL_NATIVE=0`, the pure-JAX path runs, with the same results.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.interpreters import batching

from jaxdl.kernels.build import NativeLibrary, ffi_primitive

TARGET = "jaxdl_blocked_patches"


def stack_patches(grouped: jax.Array, kh: int, groups: int, sh: int, out_h: int,
                  blocks: int) -> jax.Array:
    """Pure JAX: `[..., H, G, R]` -> `[..., out_h, blocks, kh * groups, R]` with
    `out[..., y, x, i * groups + g, :] = grouped[..., y * sh + i, x + g, :]`."""
    rows = (out_h - 1) * sh + 1
    return jnp.stack([grouped[..., i:i + rows:sh, g:g + blocks, :]
                      for i in range(kh) for g in range(groups)], axis=-2)


LIBRARY = NativeLibrary("blocked_patches.cc", {TARGET: "JaxdlBlockedPatches"},
                        batch_partitionable=(TARGET,))


def available() -> bool:
    """Whether the native kernel is built and registered (builds it on first call)."""
    return LIBRARY.available()


def unavailable_reason() -> str:
    """Why `available()` is False ("" when it is True or was not asked yet)."""
    return LIBRARY.unavailable_reason()


def _patch_shape(shape, kh, groups, out_h, blocks):
    return (*shape[:-3], out_h, blocks, kh * groups, shape[-1])


# Each device copies only its own images of a batch-sharded input.
_patches_p = ffi_primitive(
    TARGET, lambda grouped, *, kh, groups, sh, out_h, blocks: jax.core.ShapedArray(
        _patch_shape(grouped.shape, kh, groups, out_h, blocks), grouped.dtype),
    sharding_rule="... h g r -> ... y x s v", replicated_factors=tuple("hgryxsv"),
    int_attributes=("kh", "groups", "sh"),
    leading_batch_dims=lambda avals_in: len(avals_in[0].shape) - 3)


def _batch_patches(args, dims, **params):
    # vmap: the mapped axis becomes one more leading batch dim.
    (grouped,), (dim,) = args, dims
    return _patches_p.bind(jnp.moveaxis(grouped, dim, 0), **params), 0


batching.primitive_batchers[_patches_p] = _batch_patches


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _native_patches(grouped, kh, groups, sh, out_h, blocks):
    # Under jit so that an eager call compiles too (the primitive has no eager impl).
    return _patches_p.bind(grouped, kh=kh, groups=groups, sh=sh, out_h=out_h, blocks=blocks)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4, 5))
def _patches_native(grouped, kh, groups, sh, out_h, blocks):
    return _native_patches(grouped, kh, groups, sh, out_h, blocks)


def _native_fwd(grouped, kh, groups, sh, out_h, blocks):
    # The residual is only the image's (H, G), carried by an empty array.
    height_groups = jnp.zeros((0, *grouped.shape[-3:-1]), grouped.dtype)
    return _native_patches(grouped, kh, groups, sh, out_h, blocks), height_groups


def _native_bwd(kh, groups, sh, out_h, blocks, height_groups, d_patches):
    # The copy is linear: its transpose is the pure-JAX slices' (pads and adds).
    shape = (*d_patches.shape[:-4], *height_groups.shape[1:], d_patches.shape[-1])
    _, pullback = jax.vjp(lambda g: stack_patches(g, kh, groups, sh, out_h, blocks),
                          jnp.zeros(shape, d_patches.dtype))
    return pullback(d_patches)


_patches_native.defvjp(_native_fwd, _native_bwd)


def blocked_patches(grouped: jax.Array, kh: int, groups: int, sh: int, out_h: int,
                    blocks: int) -> jax.Array:
    """`stack_patches`, by the native kernel on CPU when it is available.

    Args:
      grouped: `[..., H, G, R]`, the image viewed as groups of `R` values.
      kh, groups, sh: kernel rows, column groups per block, row stride.
      out_h, blocks: output rows and column blocks.
    Returns:
      `[..., out_h, blocks, kh * groups, R]`, bitwise equal on either path.
    """
    if jax.default_backend() == "cpu" and available():
        return _patches_native(grouped, kh, groups, sh, out_h, blocks)
    return stack_patches(grouped, kh, groups, sh, out_h, blocks)
