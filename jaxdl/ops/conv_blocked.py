"""Convolution by column-blocked patches and one GEMM, with a GEMM gradient.

XLA:CPU convolves layers with few channels (the tutorial CNN's 3 -> 6 and
6 -> 16, 5x5) slowly, their gradients most of all. Plain im2col is no cure for
the first layer: its patch matrix is `kh * kw` times the image, and writing and
reading it back costs more than the arithmetic.

`conv2d_blocked` computes `bx` neighbouring output columns at once. The image is
viewed, for free, as groups of `bx * sw` columns (`[B, H, W / (bx sw), bx sw C]`);
a block of outputs reads `kh` rows of `g` neighbouring groups, so a patch row is
`kh * g` contiguous runs of `bx * sw * C` values, and the kernel becomes a block
matrix `[kh * g * bx * sw * C, bx * O]` with zeros where a column lies outside an
output's window. For the first layer (bx = 4) the patch matrix is smaller than
im2col's and copied in longer runs; the GEMM does more multiply-adds, cheap at
these sizes. The output comes out NHWC, no transpose. JAX differentiates the
slices, the stack and the GEMM into GEMMs and adds. The patches themselves are
copied by a small C++ kernel where one can be built (`jaxdl.kernels.blocked_patches`,
bitwise the same values as XLA's slices).

`conv2d_blocked_grad` is what the dispatch in `jaxdl.ops.conv` runs: a forward
pass (this GEMM, or XLA's own convolution where that is the faster one) under a
custom VJP whose backward pass is always the blocked formulation's.

Results equal `lax.conv_general_dilated` up to float summation order for finite
inputs. A NaN or infinity in the input also reaches, through a zero block-kernel
entry (`inf * 0 = NaN`), the outputs of its block whose windows do not contain
it; any loss over those outputs is non-finite either way. Layout: NHWC images,
HWIO kernels, VALID padding (the dispatch pads first), any strides.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdl.kernels.blocked_patches import blocked_patches
from jaxdl.ops.conv_matmul import output_size

# A patch row is copied in runs of bx * sw * C values; about 12 floats measured
# best (docs/VISION_RESULTS.md, "Convolution implementations").
RUN_VALUES = 12


def block_width(out_width: int, in_channels: int, stride: int) -> int:
    """Output columns per block: the largest divisor of `out_width` whose input
    run `bx * stride * in_channels` stays within `RUN_VALUES` (at least 1)."""
    fitting = [d for d in range(1, out_width + 1)
               if out_width % d == 0 and d * stride * in_channels <= RUN_VALUES]
    return max(fitting, default=1)


def _groups(kw: int, bx: int, sw: int) -> int:
    """Column groups of `bx * sw` columns a block of `bx` outputs reads."""
    return -(-((bx - 1) * sw + kw) // (bx * sw))


@functools.lru_cache(maxsize=64)
def _block_kernel_index(kh: int, kw: int, cin: int, bx: int, sw: int):
    """Where each block-kernel entry comes from in the flat HWIO kernel.

    Returns `(index, inside)`, both `[kh, g, bx * sw, cin, bx]`: entry `(i, g, r,
    c, q)` multiplies input column `g * bx * sw + r` of the block by output column
    `q`, i.e. kernel tap `j = g * bx * sw + r - q * sw` when `0 <= j < kw`.
    """
    groups = _groups(kw, bx, sw)
    i, g, r, c, q = np.ix_(np.arange(kh), np.arange(groups), np.arange(bx * sw),
                           np.arange(cin), np.arange(bx))
    j = g * bx * sw + r - q * sw
    inside = (j >= 0) & (j < kw)
    index = ((i * kw + np.clip(j, 0, kw - 1)) * cin + c).astype(np.int32)
    shape = (kh, groups, bx * sw, cin, bx)
    return np.broadcast_to(index, shape).copy(), np.broadcast_to(inside, shape).copy()


def block_kernel(kernel: jax.Array, bx: int, sw: int) -> jax.Array:
    """HWIO `[kh, kw, C, O]` -> the block matrix `[kh * g * bx * sw * C, bx * O]`."""
    kh, kw, cin, cout = kernel.shape
    index, inside = _block_kernel_index(kh, kw, cin, bx, sw)
    taps = kernel.reshape(kh * kw * cin, cout)[index]  # [kh, g, bx sw, C, bx, O]
    blocks = jnp.where(inside[..., None], taps, jnp.zeros((), kernel.dtype))
    return blocks.reshape(-1, bx * cout)


def conv2d_blocked(x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    """VALID cross-correlation of NHWC `x [B, H, W, C]` with HWIO `kernel`, blocked.

    Differentiable by plain autodiff. Returns `[B, H', W', O]` with
    `H' = (H - kh) // sh + 1`.
    """
    kh, kw, cin, cout = kernel.shape
    batch, height, width, _ = x.shape
    sh, sw = strides
    out_h, out_w = output_size(height, kh, sh), output_size(width, kw, sw)
    bx = block_width(out_w, cin, sw)
    blocks, groups = out_w // bx, _groups(kw, bx, sw)
    # Exactly the columns the blocks read, as whole groups (zeros past the edge
    # meet only zero kernel entries).
    used = (blocks + groups - 1) * bx * sw
    x = x[:, :, :used] if width >= used else jnp.pad(
        x, ((0, 0), (0, 0), (0, used - width), (0, 0)))
    grouped = x.reshape(batch, height, blocks + groups - 1, bx * sw * cin)
    patches = blocked_patches(grouped, kh, groups, sh, out_h, blocks)
    out = patches.reshape(batch * out_h * blocks, -1) @ block_kernel(kernel, bx, sw)
    return out.reshape(batch, out_h, out_w, cout)


def _xla_conv(x, kernel, strides):
    return lax.conv_general_dilated(x, kernel, strides, "VALID",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


FORWARDS = {"blocked": conv2d_blocked, "lax": _xla_conv}


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv2d_blocked_grad(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                        forward: str = "blocked") -> jax.Array:
    """VALID cross-correlation of NHWC `x [B, H, W, C]` with HWIO `kernel`.

    The forward pass is `FORWARDS[forward]` (the blocked GEMM, or XLA's
    convolution, which saves no patch matrix); the backward pass is always the
    blocked formulation's. Returns `[B, H', W', O]` with `H' = (H - kh) // sh + 1`.
    """
    return FORWARDS[forward](x, kernel, strides)


def _forward_pass(x, kernel, strides, forward):
    return FORWARDS[forward](x, kernel, strides), (x, kernel)


def _materialised(x: jax.Array) -> jax.Array:
    """`x`, computed once into its own buffer: its product with an identity matrix.

    XLA:CPU fuses elementwise producers into their consumers, recomputing them per
    use, and drops optimisation barriers; a dot is a library call it never fuses.
    Exact for finite values (`x * 1 + 0 * others`); a NaN or infinity spreads to
    the other channels of its pixel.
    """
    channels = x.shape[-1]
    return (x.reshape(-1, channels) @ jnp.eye(channels, dtype=x.dtype)).reshape(x.shape)


def _backward_pass(strides, forward, residuals, dy):
    del forward  # the gradient is the blocked one whichever forward ran
    x, kernel = residuals
    # The blocked formulation's own gradient: its forward GEMM is dead here and
    # XLA drops it; the patches are rebuilt (or shared with the forward pass).
    _, pullback = jax.vjp(lambda x, kernel: conv2d_blocked(x, kernel, strides), x, kernel)
    dx, dkernel = pullback(dy)
    # dx is a sum of kh * g shifted planes. Left fusible, XLA folds that sum into
    # the consumer, e.g. the gradient of the max pooling before this layer, which
    # then reads each value several times; materialised, it is summed once.
    return _materialised(dx), dkernel


conv2d_blocked_grad.defvjp(_forward_pass, _backward_pass)
