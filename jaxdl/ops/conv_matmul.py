"""Convolution as one matrix multiply (im2col), for CPUs.

XLA's CPU convolution is slow when channels are few (the tutorial CNN has 3 → 6
→ 16), and its backward pass most of all. Gathering every ``kh × kw`` window into
a patch vector with plain strided slices and multiplying by the reshaped kernel
turns the forward into one GEMM; JAX differentiates slices into pads and adds, so
both gradients are GEMMs too (``dkernel = patchesᵀ · dy``, ``dpatches = dy ·
kernelᵀ`` folded back by adds). Results equal ``lax.conv_general_dilated`` up to
float summation order.

Layout: images NHWC, kernels HWIO, as in ``jaxdl.ops.conv``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow/XLA 'SAME' padding ``(before, after)`` of one spatial dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def output_size(size: int, window: int, stride: int) -> int:
    """Output length of a VALID window sliding over ``size`` (after any padding)."""
    return (size - window) // stride + 1


def explicit_padding(spatial: tuple[int, int], window: tuple[int, int],
                     strides: tuple[int, int], padding) -> tuple[tuple[int, int], ...]:
    """``'VALID'``, ``'SAME'`` or explicit pairs as ``((top, bottom), (left, right))``."""
    if padding == "VALID":
        return ((0, 0), (0, 0))
    if padding == "SAME":
        return tuple(same_padding(size, w, s) for size, w, s in zip(spatial, window, strides))
    return tuple(tuple(p) for p in padding)


def extract_patches(x: jax.Array, kh: int, kw: int, strides: tuple[int, int],
                    padding: tuple[tuple[int, int], tuple[int, int]]) -> jax.Array:
    """Every ``kh × kw`` window of ``x`` as one vector.

    Args:
      x: images ``[B, H, W, C]``.
      kh, kw: window height and width.
      strides: ``(sh, sw)``.
      padding: explicit ``((top, bottom), (left, right))`` zeros.
    Returns:
      ``[B, H', W', kh * kw * C]`` ordered ``(i, j, c)``, matching an HWIO kernel
      reshaped to ``[kh * kw * C, Cout]``.
    """
    sh, sw = strides
    x = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    _, height, width, _ = x.shape
    out_h, out_w = output_size(height, kh, sh), output_size(width, kw, sw)
    windows = [x[:, i:i + (out_h - 1) * sh + 1:sh, j:j + (out_w - 1) * sw + 1:sw, :]
               for i in range(kh) for j in range(kw)]
    return jnp.concatenate(windows, axis=-1)


def conv2d_matmul(x: jax.Array, kernel: jax.Array, *, strides: tuple[int, int],
                  padding: str | tuple[tuple[int, int], tuple[int, int]],
                  precision: Any = None) -> jax.Array:
    """2-D cross-correlation by im2col + matmul; same results as ``lax.conv``.

    Args:
      x: images ``[B, H, W, Cin]``.
      kernel: ``[kh, kw, Cin, Cout]`` (HWIO).
      strides: ``(sh, sw)``.
      padding: ``'SAME'``, ``'VALID'`` or ``((top, bottom), (left, right))``
        (already normalised by ``jaxdl.ops.conv``).
      precision: ``jax.lax`` precision of the matmul (None: the default).
    Returns:
      ``[B, H', W', Cout]``.
    """
    kh, kw, cin, cout = kernel.shape
    pads = explicit_padding(x.shape[1:3], (kh, kw), strides, padding)
    patches = extract_patches(x, kh, kw, strides, pads)
    return jnp.dot(patches, kernel.reshape(kh * kw * cin, cout), precision=precision)
