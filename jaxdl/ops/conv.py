"""The convolution dispatch: every jaxdl CNN convolves and pools through this file.

`conv2d` and `max_pool` have several implementations; which one runs is decided
by one table, `jaxdl.ops.conv_policy.POLICY`, from the backend and static shapes
(never values) at trace time:

  * "lax": XLA's `conv_general_dilated`;
  * "matmul": im2col and one GEMM (`jaxdl.ops.conv_matmul`);
  * "direct_kernels": the C++ direct kernels for the output and both gradients
    (`jaxdl.kernels.conv_direct`);
  * "blocked": column-blocked patches and GEMMs (`jaxdl.ops.conv_blocked`);
  * "lax_forward_blocked_grad": XLA's forward convolution, the blocked gradient;
  * for `max_pool`, "tiled_max_pool" (maxima of strided slices) or
    "reduce_window_max".

What a caller asks for is a request, one of `CONV_IMPLS`: "lax", "matmul",
"direct" (the CPU implementations: direct kernels where they apply, else the
blocked ones) or "auto" (the table's choice per layer). The request comes from,
first to last: the `impl` argument of `conv2d` (or of `jaxdl.models.conv.Conv2d`
and the CNN models), the innermost `conv_implementation` block, the process
default `$JAXDL_CONV_IMPL`, and "auto".

Layout: images NHWC, kernels HWIO (`[kh, kw, cin, cout]`), as in flax.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from jaxdl.errors import ConfigError
from jaxdl.kernels import conv_direct
from jaxdl.ops.conv_blocked import conv2d_blocked_grad
from jaxdl.ops.conv_matmul import conv2d_matmul, explicit_padding
from jaxdl.ops.conv_policy import (CONV_IMPLS, Facts, conv_implementation, current_request,
                                   resolve)

__all__ = ["CONV_IMPLS", "avg_pool", "conv2d", "conv_implementation", "global_avg_pool",
           "max_pool"]

Padding = str | int | Sequence[tuple[int, int]]


def as_pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """Turns an int or a pair of ints into a (height, width) pair."""
    if isinstance(value, int):
        pair = (value, value)
    else:
        pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ConfigError(
            f"{name}={value!r}: expected a positive int or a pair of positive ints"
        )
    return pair  # type: ignore[return-value]


def lax_padding(padding: Padding) -> str | tuple[tuple[int, int], ...]:
    """Normalises 'SAME' / 'VALID' / int / per-dimension pairs for lax."""
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ConfigError(
                f"padding={padding!r}: expected 'SAME', 'VALID', an int or "
                "((top, bottom), (left, right))"
            )
        return padding.upper()
    if isinstance(padding, int):
        if padding < 0:
            raise ConfigError(f"padding={padding}: expected a non-negative int")
        return ((padding, padding), (padding, padding))
    pairs = tuple(tuple(p) for p in padding)
    if len(pairs) != 2 or not all(len(p) == 2 for p in pairs):
        raise ConfigError(
            f"padding={padding!r}: expected ((top, bottom), (left, right))"
        )
    return pairs  # type: ignore[return-value]


def _padded(x, kernel, strides, padding):
    """`x` with `padding` added as zeros, for the implementations that take VALID only."""
    pads = explicit_padding(x.shape[1:3], kernel.shape[:2], strides, padding)
    if any(p for pair in pads for p in pair):
        x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    return x


def _lax_conv(x, kernel, strides, padding, precision):
    return jax.lax.conv_general_dilated(x, kernel, window_strides=strides, padding=padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=precision)


# Each: (x, kernel, strides, padding, precision) -> y. The C++ and blocked paths
# run at the default precision.
CONV_IMPLEMENTATIONS: dict[str, Callable] = {
    "lax": _lax_conv,
    "matmul": lambda x, k, strides, padding, precision: conv2d_matmul(
        x, k, strides=strides, padding=padding, precision=precision),
    "direct_kernels": lambda x, k, strides, padding, precision: conv_direct.conv2d_with_grad(
        _padded(x, k, strides, padding), k),
    "blocked": lambda x, k, strides, padding, precision: conv2d_blocked_grad(
        _padded(x, k, strides, padding), k, strides, "blocked"),
    "lax_forward_blocked_grad": lambda x, k, strides, padding, precision: conv2d_blocked_grad(
        _padded(x, k, strides, padding), k, strides, "lax"),
}


def conv2d(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: int | Sequence[int] = 1,
    padding: Padding = "SAME",
    precision: jax.lax.PrecisionLike = None,
    impl: str | None = None,
) -> jax.Array:
    """2-D cross-correlation (what deep-learning libraries call convolution).

    On NVIDIA GPUs, float32 convolutions at the default precision run in TF32
    (measured on an H200: max abs error 0.017 against float64 for 3x3x16 filters,
    2.5e-5 with `precision="highest"`); pass `precision`, or wrap the code in
    `jax.default_matmul_precision("highest")`, where exact float32 matters.

    Args:
      x: images `[B, H, W, Cin]`.
      kernel: filters `[kh, kw, Cin, Cout]` (HWIO).
      strides: an int or `(sh, sw)`.
      padding: `'SAME'`, `'VALID'`, an int (zeros on every side) or
        `((top, bottom), (left, right))`.
      precision: `jax.lax` precision; None follows `jax_default_matmul_precision`.
      impl: one of `CONV_IMPLS`; None follows `conv_implementation` and
        `$JAXDL_CONV_IMPL` (see the module docstring).

    Returns:
      `[B, H', W', Cout]`, with `H' = ceil(H / sh)` for `'SAME'` and
      `H' = (H + top + bottom - kh) // sh + 1` otherwise.
    """
    if x.ndim != 4 or kernel.ndim != 4 or x.shape[-1] != kernel.shape[2]:
        raise ConfigError(
            f"conv2d: x shape {x.shape} and kernel shape {kernel.shape} do not "
            "fit; expected x [B, H, W, Cin] and kernel [kh, kw, Cin, Cout]"
        )
    strides, padding = as_pair(strides, "strides"), lax_padding(padding)
    facts = Facts(jax.default_backend(), tuple(x.shape), tuple(kernel.shape[:2]), strides,
                  kernel.shape[3], x.dtype == kernel.dtype == jnp.float32, padding == "VALID")
    implementation = resolve(current_request(impl), facts)
    return CONV_IMPLEMENTATIONS[implementation](x, kernel, strides, padding, precision)


def max_pool(
    x: jax.Array,
    window: int | Sequence[int] = 2,
    strides: int | Sequence[int] | None = None,
    *,
    padding: str = "VALID",
) -> jax.Array:
    """Max pooling over the spatial axes of `[B, H, W, C]`.

    Args:
      x: images `[B, H, W, C]`.
      window: pooling window, an int or `(wh, ww)`.
      strides: defaults to the window (non-overlapping pooling).
      padding: `'VALID'` (drop the remainder, as PyTorch's MaxPool2d) or `'SAME'`.

    Returns:
      `[B, H', W', C]`, e.g. `H' = H // 2` for the default 2x2 window.
    """
    wh, ww = as_pair(window, "window")
    sh, sw = as_pair(window if strides is None else strides, "strides")
    facts = Facts(jax.default_backend(), tuple(x.shape), (wh, ww), (sh, sw), x.shape[-1],
                  x.dtype == jnp.float32, padding.upper() == "VALID")
    if resolve("max_pool", facts) == "tiled_max_pool":
        return _tiled_max_pool(x, wh, ww)
    return jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, (1, wh, ww, 1), (1, sh, sw, 1), padding.upper()
    )


def _first_max(a: jax.Array, b: jax.Array) -> jax.Array:
    """`max(a, b)` that prefers `a` on ties (and propagates NaN), so its gradient
    goes to one input, the earlier one, as XLA's reduce-window max gradient does."""
    return jnp.where((a >= b) | jnp.isnan(a), a, b)


def _tiled_max_pool(x: jax.Array, wh: int, ww: int) -> jax.Array:
    """Non-overlapping `wh x ww` max pooling as maxima of strided slices.

    Same values and the same gradient as `reduce_window` (ties: the first element
    in row-major window order wins, hence columns are reduced before rows), but
    no select-and-scatter in the gradient (figures in docs/VISION_RESULTS.md).
    """
    out_h, out_w = x.shape[1] // wh, x.shape[2] // ww
    x = x[:, :out_h * wh, :out_w * ww]
    rows = []
    for i in range(wh):
        row = x[:, i::wh, 0::ww]
        for j in range(1, ww):
            row = _first_max(row, x[:, i::wh, j::ww])
        rows.append(row)
    pooled = rows[0]
    for row in rows[1:]:
        pooled = _first_max(pooled, row)
    return pooled


def avg_pool(
    x: jax.Array,
    window: int | Sequence[int] = 2,
    strides: int | Sequence[int] | None = None,
) -> jax.Array:
    """Average pooling (no padding) over the spatial axes of `[B, H, W, C]`.

    Args:
      x: images `[B, H, W, C]`.
      window: pooling window, an int or `(wh, ww)`.
      strides: defaults to the window.

    Returns:
      `[B, (H - wh) // sh + 1, (W - ww) // sw + 1, C]`.
    """
    wh, ww = as_pair(window, "window")
    sh, sw = as_pair(window if strides is None else strides, "strides")
    summed = jax.lax.reduce_window(
        x, 0.0, jax.lax.add, (1, wh, ww, 1), (1, sh, sw, 1), "VALID"
    )
    return summed / (wh * ww)


def global_avg_pool(x: jax.Array) -> jax.Array:
    """Mean over the spatial axes: `[B, H, W, C] -> [B, C]`."""
    return jnp.mean(x, axis=(1, 2))
