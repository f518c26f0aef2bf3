"""The convolution seam: every jaxdl CNN convolves and pools only through this file.

Keeping convolution behind `conv2d` means a faster formulation (for instance an
im2col matmul, which XLA on CPU runs much faster than its direct convolution when
channels are few) can be swapped in here without touching a single model.

Layout: images NHWC, kernels HWIO (`[kh, kw, cin, cout]`), as in flax.
"""

import contextlib
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdl.errors import ConfigError
from jaxdl.ops.conv_cpu import conv2d_cpu
from jaxdl.ops.conv_matmul import conv2d_matmul, explicit_padding

Padding = str | int | Sequence[tuple[int, int]]

# "auto" (the default: "direct" for stride-1 convolutions on CPU, else "lax"),
# "lax" (XLA's convolution), "matmul" (im2col, see conv_matmul.py) or "direct"
# (conv_cpu.py: C++ direct kernels on AVX-512 CPUs, else column-blocked patches
# and GEMMs). Read at trace time: set JAXDL_CONV_IMPL, or use
# `conv_implementation`, before building a step.
CONV_IMPLS = ("auto", "lax", "matmul", "direct")
CONV_IMPL = os.environ.get("JAXDL_CONV_IMPL", "auto")

# "auto" takes "direct" on CPU for stride-1 convolutions whose patch matrix stays
# this small: 2**24 float32 elements is 64 MiB (the tutorial CNN's largest is 3.8M).
# Measured on 2 cores, output and both gradients, "direct" against "lax": 3->6 5x5
# on 32x32 3.7 against 20 ms; 6->16 5x5 on 14x14 1.9 against 3.1 ms; 32->64 3x3
# on 16x16 16 against 31 ms; 1->32 3x3 on 8x8 0.28 against 0.57 ms (without the
# input gradient 0.20 against 0.13). A stride-2 3x3 16->32 layer at batch 128 was
# slower on "direct" (42 against 38 ms), so strided layers stay on XLA's conv.
DIRECT_MAX_PATCH_ELEMENTS = 2**24
# ... and on images of at least this many pixels. Below, both are as fast (the
# digits CNN, 8x8: 5.46 against 5.42 ms per step) and XLA's conv keeps the
# documented digits results bit for bit (with "direct", summation order moved the
# default digits CNN run from 0.9861 to 0.9833 test accuracy, one image of 360).
DIRECT_MIN_PIXELS = 12 * 12


@contextlib.contextmanager
def conv_implementation(name: str):
    """Trace convolutions with ``name`` (one of ``CONV_IMPLS``) inside the block.

    The choice is read at trace time, so it applies to steps built in the block;
    "" keeps the current one.
    """
    global CONV_IMPL
    if not name:
        yield
        return
    if name not in CONV_IMPLS:
        raise ConfigError(f"convolution implementation {name!r}; expected one of {CONV_IMPLS}")
    previous, CONV_IMPL = CONV_IMPL, name
    try:
        yield
    finally:
        CONV_IMPL = previous


def _resolved_impl(x_shape: Sequence[int], kernel_shape: Sequence[int],
                   strides: tuple[int, int]) -> str:
    """The implementation `conv2d` uses for images `x_shape`, an HWIO kernel and strides."""
    if CONV_IMPL not in CONV_IMPLS:
        raise ConfigError(f"JAXDL_CONV_IMPL={CONV_IMPL!r}; expected one of {CONV_IMPLS}")
    if CONV_IMPL != "auto":
        return CONV_IMPL
    kh, kw, in_channels, _ = kernel_shape
    # The patch matrix's size with SAME padding (VALID is smaller).
    patch_elements = kh * kw * in_channels * x_shape[0] * x_shape[1] * x_shape[2]
    small = patch_elements <= DIRECT_MAX_PATCH_ELEMENTS
    large = x_shape[1] * x_shape[2] >= DIRECT_MIN_PIXELS
    unit_strides = tuple(strides) == (1, 1)
    chosen = small and large and unit_strides and jax.default_backend() == "cpu"
    return "direct" if chosen else "lax"


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
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


def _lax_padding(padding: Padding) -> str | tuple[tuple[int, int], ...]:
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


def conv2d(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: int | Sequence[int] = 1,
    padding: Padding = "SAME",
    precision: jax.lax.PrecisionLike = None,
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

    Returns:
      `[B, H', W', Cout]`, with `H' = ceil(H / sh)` for `'SAME'` and
      `H' = (H + top + bottom - kh) // sh + 1` otherwise.
    """
    if x.ndim != 4 or kernel.ndim != 4 or x.shape[-1] != kernel.shape[2]:
        raise ConfigError(
            f"conv2d: x shape {x.shape} and kernel shape {kernel.shape} do not "
            "fit; expected x [B, H, W, Cin] and kernel [kh, kw, Cin, Cout]"
        )
    strides, padding = _pair(strides, "strides"), _lax_padding(padding)
    impl = _resolved_impl(x.shape, kernel.shape, strides)
    if impl == "matmul":  # im2col + one GEMM (jaxdl/ops/conv_matmul.py)
        return conv2d_matmul(x, kernel, strides=strides, padding=padding, precision=precision)
    if impl == "direct":  # column-blocked patches and GEMMs (jaxdl/ops/conv_cpu.py)
        pads = explicit_padding(x.shape[1:3], kernel.shape[:2], strides, padding)
        if any(p for pair in pads for p in pair):
            x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
        return conv2d_cpu(x, kernel, strides)
    return jax.lax.conv_general_dilated(
        x,
        kernel,
        window_strides=strides,
        padding=padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=precision,
    )


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
    wh, ww = _pair(window, "window")
    sh, sw = _pair(window if strides is None else strides, "strides")
    if (wh, ww) == (sh, sw) and padding.upper() == "VALID" and jax.default_backend() == "cpu":
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
    on CPU XLA's reduce-window gradient (select-and-scatter) is slow: relu + 2x2
    pool of [64, 28, 28, 6], forward and backward, 2.2 ms against 0.65 ms.
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
    wh, ww = _pair(window, "window")
    sh, sw = _pair(window if strides is None else strides, "strides")
    summed = jax.lax.reduce_window(
        x, 0.0, jax.lax.add, (1, wh, ww, 1), (1, sh, sw, 1), "VALID"
    )
    return summed / (wh * ww)


def global_avg_pool(x: jax.Array) -> jax.Array:
    """Mean over the spatial axes: `[B, H, W, C] -> [B, C]`."""
    return jnp.mean(x, axis=(1, 2))


class Conv2d(nnx.Module):
    """A 2-D convolution layer (NHWC) that convolves through `conv2d`.

    Parameters are initialised like `flax.nnx.Conv`: the kernel from
    LeCun-normal, the bias zeros.

    Args:
      in_features: input channels `Cin`.
      out_features: output channels `Cout`.
      kernel_size: an int or `(kh, kw)`.
      strides: an int or `(sh, sw)`.
      padding: `'SAME'`, `'VALID'`, an int, or `((top, bottom), (left, right))`.
      use_bias: whether to add a learned bias `[Cout]`.
      precision: passed to `conv2d`; None follows JAX's default (TF32 on GPUs).
      rngs: supplies the `params` key for initialisation.

    Attributes:
      kernel: `nnx.Param [kh, kw, Cin, Cout]`.
      bias: `nnx.Param [Cout]`, or None when `use_bias=False`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int | Sequence[int],
        *,
        strides: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        use_bias: bool = True,
        precision: jax.lax.PrecisionLike = None,
        rngs: nnx.Rngs,
    ):
        kh, kw = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        # Normalised (hashable) and validated now rather than at the first call.
        self.padding = _lax_padding(padding)
        self.precision = precision
        init = nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(
            init(rngs.params(), (kh, kw, in_features, out_features), jnp.float32)
        )
        self.bias = (
            nnx.Param(jnp.zeros((out_features,), jnp.float32)) if use_bias else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """Convolves `x [B, H, W, Cin]` into `[B, H', W', Cout]`."""
        y = conv2d(x, self.kernel[...], strides=self.strides, padding=self.padding,
                   precision=self.precision)
        if self.bias is not None:
            y = y + self.bias[...]
        return y
