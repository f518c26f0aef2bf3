"""A convolution for CPUs: direct C++ kernels, else column-blocked patches and one GEMM.

`conv2d_cpu` (what the conv seam calls) has two formulations, chosen at trace time:

  * direct kernels (`conv_direct.py`, AVX-512 C++ compiled on first use) for the
    output and both gradients, float32 stride 1: the tutorial CNN's step 4.8 ->
    4.5 ms on 2 cores against the GEMM formulation below at 5.4 ms;
  * otherwise (another CPU, no compiler, strides, other dtypes) the GEMMs below.

XLA:CPU convolves the tutorial CNN's layers (3 -> 6 and 6 -> 16 channels, 5x5)
slowly, their gradients most of all. Plain im2col is no cure for the first
layer: its patch matrix is `kh * kw` times the image (15 MB at batch 64), and
writing and reading it back costs more than the arithmetic.

`conv2d_blocked` computes `bx` neighbouring output columns at once. The image is
viewed, for free, as groups of `bx * sw` columns (`[B, H, W / (bx sw), bx sw C]`);
a block of outputs reads `kh` rows of `g` neighbouring groups, so a patch row is
`kh * g` contiguous runs of `bx * sw * C` values, and the kernel becomes a block
matrix `[kh * g * bx * sw * C, bx * O]` with zeros where a column lies outside an
output's window. For the first layer (bx = 4) the patch matrix is 2.5x smaller
than im2col's and copied in 48-byte runs instead of 12; the GEMM does 1.6x the
multiply-adds, cheap at these sizes. The output comes out NHWC, no transpose.
JAX differentiates the slices, the stack and the GEMM into GEMMs and adds. The
patches themselves are copied by a small C++ kernel where one can be built
(`blocked_patches.py`: 4x faster than XLA's slices here, bitwise the same values).

Without the direct kernels, `conv2d_cpu` runs the forward pass on XLA's own
convolution where that is fast (16 output channels or more) and always takes
the blocked formulation's gradient, under a custom VJP.

Measured on 2 cores, batch 64, output and both gradients: 3 -> 6 on 32x32, 3.7 ms
against 20 ms for XLA (4.1 ms for the gathered im2col this replaced, without the
input gradient); 6 -> 16 on 14x14, 1.9 against 3.1 ms.

Results equal `lax.conv_general_dilated` up to float summation order for finite
inputs. A NaN or infinity in the input also reaches, through a zero block-kernel
entry (`inf * 0 = NaN`), the outputs of its block whose windows do not contain
it; any loss over those outputs is non-finite either way. Layout: NHWC images,
HWIO kernels, VALID padding (the seam pads first), any strides.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdl.kernels import conv_direct
from jaxdl.ops.conv_matmul import output_size
from jaxdl.kernels.blocked_patches import blocked_patches

# A patch row is copied in runs of bx * sw * C values; about 12 floats measured
# best (conv 3 -> 6: bx 4 beat 2 and 7; conv 6 -> 16: bx 2 beat 1 and 5).
RUN_VALUES = 12

# XLA's forward convolution is fast from this many output channels on (6 -> 16
# on 14x14: 0.53 ms against the blocked GEMM's 0.64), slow below (3 -> 6 on
# 32x32: 4.2 ms against 1.35); its backward pass is slow at every size measured.
XLA_FORWARD_MIN_OUT_CHANNELS = 16


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

    Returns `[B, H', W', O]` with `H' = (H - kh) // sh + 1`.
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


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv2d_cpu(x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    """VALID cross-correlation of NHWC `x [B, H, W, C]` with HWIO `kernel`.

    The direct C++ kernels where `conv_direct.usable`; otherwise the forward pass
    is the blocked GEMM for fewer than `XLA_FORWARD_MIN_OUT_CHANNELS` output
    channels and XLA's convolution from there on (fast there, and it saves no
    patch matrix), and the backward pass the blocked formulation's.

    Returns `[B, H', W', O]` with `H' = (H - kh) // sh + 1`.
    """
    if conv_direct.usable(x, kernel, strides):
        return conv_direct.conv2d(x, kernel)
    if kernel.shape[-1] < XLA_FORWARD_MIN_OUT_CHANNELS:
        return conv2d_blocked(x, kernel, strides)
    return _xla_conv(x, kernel, strides)


def _conv_fwd(x, kernel, strides):
    return conv2d_cpu(x, kernel, strides), (x, kernel)


def _materialised(x: jax.Array) -> jax.Array:
    """`x`, computed once into its own buffer: its product with an identity matrix.

    XLA:CPU fuses elementwise producers into their consumers, recomputing them per
    use, and drops optimisation barriers; a dot is a library call it never fuses.
    Exact for finite values (`x * 1 + 0 * others`); a NaN or infinity spreads to
    the other channels of its pixel.
    """
    channels = x.shape[-1]
    return (x.reshape(-1, channels) @ jnp.eye(channels, dtype=x.dtype)).reshape(x.shape)


def _conv_bwd(strides, residuals, dy):
    x, kernel = residuals
    if conv_direct.usable(x, kernel, strides):
        # Direct kernels: dx is the full correlation of dy with the flipped,
        # transposed kernel, i.e. the forward kernel on dy padded by kh-1, kw-1
        # (zeros the kernel adds while copying dy, not a padded copy in XLA).
        kh, kw = kernel.shape[:2]
        dx = conv_direct.conv2d(dy, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2),
                                padding=(kh - 1, kw - 1))
        return dx, conv_direct.kernel_grad(x, dy)
    # The blocked formulation's own gradient: its forward GEMM is dead here and
    # XLA drops it; the patches are rebuilt (or shared with the forward pass).
    _, pullback = jax.vjp(lambda x, kernel: conv2d_blocked(x, kernel, strides), x, kernel)
    dx, dkernel = pullback(dy)
    # dx is a sum of kh * g shifted planes. Left fusible, XLA folds that sum into
    # the consumer, e.g. the gradient of the max pooling before this layer, which
    # reads each value 4 times (1 ms in a profile of the tutorial CNN's step).
    # Materialised: step 6.9 -> 6.2 ms on 2 cores.
    return _materialised(dx), dkernel


conv2d_cpu.defvjp(_conv_fwd, _conv_bwd)
