"""Direct stride-1 convolution kernels for the CPU (`conv_direct.cc`), and their VJP.

`conv2d_with_grad` is the "direct_kernels" implementation of `jaxdl.ops.conv`:
the output, the input gradient and the kernel gradient all by these kernels,
with no patch matrix at all (see the .cc file). Float32 NHWC/HWIO, VALID,
stride 1, on CPUs with AVX-512F or AVX2 + FMA (one build each, chosen by
`jaxdl.kernels.isa`) and a C++ compiler (`jaxdl.kernels.build`);
the dispatch's policy table checks those facts and `available()` before it
takes this path. Results equal `lax.conv_general_dilated` up to float rounding,
and repeat bit for bit from run to run (the kernel gradient sums images in
fixed groups); each build has its own bits.
"""

from __future__ import annotations

import functools

import jax

from jaxdl.kernels.build import NativeLibrary, ffi_primitive, row_partitioned

FORWARD, KERNEL_GRAD = "jaxdl_conv_forward", "jaxdl_conv_kernel_grad"


LIBRARY = NativeLibrary("conv_direct.cc", {FORWARD: "JaxdlConvForward",
                                           KERNEL_GRAD: "JaxdlConvKernelGrad"},
                        builds=("avx512", "avx2"))

_FORWARD_RULE = "b h w c, i j c o -> b y x o"
_KERNEL_GRAD_RULE = "b h w c, b y x o -> i j c o"
_WINDOW = ("h", "w", "c", "i", "j", "o", "y", "x")  # inside an image: never split

_forward_p = ffi_primitive(
    FORWARD, lambda x, k, *, pad_h, pad_w: [jax.core.ShapedArray(
        (x.shape[0], x.shape[1] + 2 * pad_h - k.shape[0] + 1,
         x.shape[2] + 2 * pad_w - k.shape[1] + 1, k.shape[3]), x.dtype)],
    sharding_rule=_FORWARD_RULE, replicated_factors=_WINDOW, multiple_results=True,
    int_attributes=("pad_h", "pad_w"))
_kernel_grad_p = ffi_primitive(
    KERNEL_GRAD, lambda x, dy: [jax.core.ShapedArray(
        (x.shape[1] - dy.shape[1] + 1, x.shape[2] - dy.shape[2] + 1, x.shape[3], dy.shape[3]),
        x.dtype)],
    sharding_rule=_KERNEL_GRAD_RULE, replicated_factors=_WINDOW, multiple_results=True)



@functools.lru_cache(maxsize=None)
def _forward(pad_h: int, pad_w: int):
    """The forward call for one padding. Images stay on their devices."""
    return row_partitioned(_forward_p, rows_in=(0, None), rows_out=(0,), pad_h=pad_h,
                           pad_w=pad_w)


# The kernel gradient is summed over the devices' images.
_kernel_grad = row_partitioned(_kernel_grad_p, rows_in=(0, 0), rows_out=(None,),
                               reduction_factors=("b",))


def available() -> bool:
    """Whether the kernels are built and registered (builds them on the first call)."""
    return LIBRARY.available()


@functools.partial(jax.jit, static_argnames="padding")
def conv2d(x: jax.Array, kernel: jax.Array, padding: tuple[int, int] = (0, 0)) -> jax.Array:
    """Stride-1 `x [B, H, W, C]` * HWIO `kernel` -> `[B, H', W', O]`.

    `padding = (ph, pw)` zeros on each side of the image, added while the kernel
    copies it (no padded copy in XLA); `H' = H + 2 ph - kh + 1`.
    """
    LIBRARY.require()
    return _forward(*padding)(x, kernel)[0]


@jax.jit
def kernel_grad(x: jax.Array, dy: jax.Array) -> jax.Array:
    """The kernel gradient `[KH, KW, C, O]` of `conv2d` for output gradient `dy`."""
    LIBRARY.require()
    return _kernel_grad(x, dy)[0]


@jax.custom_vjp
def conv2d_with_grad(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Differentiable VALID stride-1 `x [B, H, W, C]` * HWIO `kernel` -> `[B, H', W', O]`.

    Both gradients by the same kernels; `H' = H - kh + 1`.
    """
    return conv2d(x, kernel)


def _forward_pass(x, kernel):
    return conv2d(x, kernel), (x, kernel)


def _backward_pass(residuals, dy):
    x, kernel = residuals
    # dx is the full correlation of dy with the flipped, transposed kernel, i.e.
    # the forward kernel on dy padded by kh-1, kw-1 (zeros the kernel adds while
    # copying dy, not a padded copy in XLA).
    kh, kw = kernel.shape[:2]
    dx = conv2d(dy, jax.numpy.flip(kernel, (0, 1)).transpose(0, 1, 3, 2),
                padding=(kh - 1, kw - 1))
    return dx, kernel_grad(x, dy)


conv2d_with_grad.defvjp(_forward_pass, _backward_pass)
