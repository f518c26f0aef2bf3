"""A convolution for CPUs with few channels: one gathered patch matrix, three GEMMs.

XLA:CPU convolves the tutorial CNN's first layer (3 -> 6 channels, 5x5, 32x32)
slowly, and its kernel gradient slowest of all: in the profile of one training
step on 2 cores the forward took 4.7 ms and the kernel gradient, a 28x28-window
convolution, 8.5 ms of a 20 ms step. This formulation, behind `custom_vjp`:

  * forward: the patch matrix `[kh * kw * C, B * H' * W']`, gathered from the
    NHWC images with one precomputed index, times the kernel `[O, kh * kw * C]`
    (output channel-major: the wide GEMM orientation);
  * kernel gradient: the saved patch matrix times the output gradient, one GEMM
    contracting the long axis of both;
  * input gradient: `dpatches = kernel @ dy` folded back by summing shifted,
    padded planes (one fused loop), as JAX differentiates im2col.

Results equal `lax.conv_general_dilated` up to float summation order (tested
against it, values and both gradients). Layout in and out: NHWC images, HWIO
kernels, VALID padding (the seam pads first).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdl.models.conv_matmul import output_size


@functools.lru_cache(maxsize=32)
def _patch_index(batch: int, height: int, width: int, channels: int, kh: int, kw: int,
                 sh: int, sw: int) -> np.ndarray:
    """Flat indices into NHWC `[B, H, W, C]` of the patch matrix `[(i, j, c), (b, y, x)]`.

    Gathering straight from NHWC: a transpose to channel-major first would be
    fused into the gather by XLA and make every read strided (2.5x slower).
    """
    out_h, out_w = output_size(height, kh, sh), output_size(width, kw, sw)
    i, j, c, b, y, x = np.ix_(np.arange(kh), np.arange(kw), np.arange(channels),
                              np.arange(batch), np.arange(out_h), np.arange(out_w))
    flat = ((b * height + (y * sh + i)) * width + (x * sw + j)) * channels + c
    return flat.reshape(-1).astype(np.int32)


def _patches(images: jax.Array, kh: int, kw: int, strides) -> jax.Array:
    """NHWC `[B, H, W, C]` -> the patch matrix `[kh * kw * C, B * H' * W']`."""
    index = _patch_index(*images.shape, kh, kw, *strides)
    return images.reshape(-1)[index].reshape(kh * kw * images.shape[-1], -1)


def _materialised(x: jax.Array) -> jax.Array:
    """`x`, computed once into its own buffer: the product with an identity matrix.

    XLA:CPU fuses elementwise producers into their consumers, recomputing them
    per use, and drops optimisation barriers. Fed straight into the patch gather,
    the gather that fetched the batch from the dataset ran once per patch element
    (9 ms per step); a dot is a library call XLA never fuses, so its output is a
    real buffer. Exact for finite values (`x * 1 + 0 * others`).
    """
    channels = x.shape[-1]
    flat = x.reshape(-1, channels) @ jnp.eye(channels, dtype=x.dtype)
    return flat.reshape(x.shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv2d_cpu(x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    """VALID cross-correlation of NHWC `x [B, H, W, C]` with HWIO `kernel`.

    Returns `[B, H', W', O]` with `H' = (H - kh) // sh + 1`.
    """
    return _conv_fwd(x, kernel, strides)[0]


def _conv_fwd(x, kernel, strides):
    kh, kw, _, cout = kernel.shape
    batch, height, width, _ = x.shape
    out_h = output_size(height, kh, strides[0])
    out_w = output_size(width, kw, strides[1])
    patches = _patches(_materialised(x), kh, kw, strides)  # [kh * kw * C, B * H' * W']
    # [O, K] @ [K, N]: the wide orientation. Built by a 4-D transpose, so XLA
    # copies the (tiny) kernel instead of folding a transpose into the GEMM,
    # which made it run 4x slower.
    kernel_rows = kernel.transpose(3, 0, 1, 2).reshape(cout, -1)
    out = kernel_rows @ patches  # [O, B * H' * W']
    out = out.reshape(cout, batch, out_h, out_w).transpose(1, 2, 3, 0)
    return out, (patches, kernel, x.shape)


def _conv_bwd(strides, residuals, dy):
    patches, kernel, x_shape = residuals
    kh, kw, cin, cout = kernel.shape
    batch, height, width, _ = x_shape
    sh, sw = strides
    _, out_h, out_w, _ = dy.shape
    dkernel = jnp.einsum("pn,no->po", patches, dy.reshape(-1, cout)).reshape(kernel.shape)
    dy_rows = dy.transpose(3, 0, 1, 2).reshape(cout, -1)  # [O, B * H' * W']
    dpatches = (kernel.reshape(-1, cout) @ dy_rows).reshape(kh, kw, cin, batch, out_h, out_w)
    dx = None
    for i in range(kh):
        for j in range(kw):
            # Tap (i, j) read x[b, i + sh * y, j + sw * x, c]: its gradient goes back there.
            padding = [(0, 0, 0), (0, 0, 0),
                       (i, height - i - (out_h - 1) * sh - 1, sh - 1),
                       (j, width - j - (out_w - 1) * sw - 1, sw - 1)]
            plane = lax.pad(dpatches[i, j], jnp.zeros((), dpatches.dtype), padding)
            dx = plane if dx is None else dx + plane  # [C, B, H, W]
    return dx.transpose(1, 2, 3, 0), dkernel


conv2d_cpu.defvjp(_conv_fwd, _conv_bwd)
