"""Which convolution (and pooling) implementation runs: one table, `POLICY`.

The dispatch in `jaxdl.ops.conv` asks `resolve(request, facts)`; nothing else
in jaxdl chooses an implementation. A request is one of `CONV_IMPLS`; it comes
from, first to last: an explicit `impl` argument, the innermost
`conv_implementation` block (a context variable, so threads and asyncio tasks
each see their own), the process default `$JAXDL_CONV_IMPL`, and "auto".
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Callable
from typing import NamedTuple

from jaxdl.errors import ConfigError
from jaxdl.kernels import conv_direct

CONV_IMPLS = ("auto", "lax", "matmul", "direct")
ENV_VAR = "JAXDL_CONV_IMPL"

# "auto" takes "direct" on CPU for stride-1 convolutions whose patch matrix stays
# this small (2**24 float32 elements is 64 MiB) and on images of at least this
# many pixels. Strided layers, and smaller images, were measured as fast or faster
# on XLA's convolution, which also keeps the documented digits results bit for
# bit (docs/VISION_RESULTS.md, "Convolution implementations").
DIRECT_MAX_PATCH_ELEMENTS = 2**24
DIRECT_MIN_PIXELS = 12 * 12
# Without the direct kernels, XLA's forward convolution is the faster one from
# this many output channels on; its backward pass is slower at every size measured.
XLA_FORWARD_MIN_OUT_CHANNELS = 16

_REQUEST: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "jaxdl_conv_impl", default=None)


class Facts(NamedTuple):
    """What the policy may look at: the backend and static shapes, never values.

    Attributes:
      backend: `jax.default_backend()` ("cpu", "gpu", "tpu").
      x_shape: the input `[B, H, W, C]`.
      window: the kernel's or pooling window's `(kh, kw)`.
      strides: `(sh, sw)`.
      out_channels: `Cout` of the convolution (`C` for pooling).
      float32: whether every operand is float32.
      valid: whether there is no padding (pooling: 'VALID').
    """

    backend: str
    x_shape: tuple[int, ...]
    window: tuple[int, int]
    strides: tuple[int, int]
    out_channels: int
    float32: bool
    valid: bool


def _always(facts: Facts) -> bool:
    return True


def _direct_pays_off(facts: Facts) -> bool:
    """CPU, stride 1, a patch matrix (with SAME padding) of at most
    `DIRECT_MAX_PATCH_ELEMENTS`, an image of at least `DIRECT_MIN_PIXELS`."""
    batch, height, width, channels = facts.x_shape
    patch_elements = facts.window[0] * facts.window[1] * channels * batch * height * width
    return (facts.backend == "cpu" and facts.strides == (1, 1)
            and patch_elements <= DIRECT_MAX_PATCH_ELEMENTS
            and height * width >= DIRECT_MIN_PIXELS)


def _direct_kernels_apply(facts: Facts) -> bool:
    """CPU, stride 1, float32, and the kernels built (checked last: it builds them)."""
    return (facts.backend == "cpu" and facts.strides == (1, 1) and facts.float32
            and conv_direct.available())


def _few_out_channels(facts: Facts) -> bool:
    return facts.out_channels < XLA_FORWARD_MIN_OUT_CHANNELS


def _tiles(facts: Facts) -> bool:
    """Non-overlapping VALID pooling on CPU, where XLA's reduce-window gradient
    (select-and-scatter) is slow; strided slices give the same values and gradient."""
    return facts.backend == "cpu" and facts.window == facts.strides and facts.valid


# Rows are tried in order; the first whose request matches and whose condition
# holds decides. An implementation that is itself a request is resolved again.
POLICY: tuple[tuple[str, Callable[[Facts], bool], str], ...] = (
    # request     condition               implementation
    ("auto",      _direct_pays_off,       "direct"),
    ("auto",      _always,                "lax"),
    ("direct",    _direct_kernels_apply,  "direct_kernels"),
    ("direct",    _few_out_channels,      "blocked"),
    ("direct",    _always,                "lax_forward_blocked_grad"),
    ("lax",       _always,                "lax"),
    ("matmul",    _always,                "matmul"),
    ("max_pool",  _tiles,                 "tiled_max_pool"),
    ("max_pool",  _always,                "reduce_window_max"),
)


def resolve(request: str, facts: Facts) -> str:
    """The implementation `POLICY` gives `request` (a `CONV_IMPLS` entry or "max_pool")."""
    while True:
        for row_request, condition, implementation in POLICY:
            if row_request == request and condition(facts):
                break
        else:
            raise ConfigError(f"convolution implementation {request!r}; expected one of "
                              f"{CONV_IMPLS}")
        if implementation == request or not any(r == implementation for r, _, _ in POLICY):
            return implementation
        request = implementation


def check_impl(name: str, where: str) -> str:
    """`name` if it is one of `CONV_IMPLS`; else a ConfigError naming `where`."""
    if name not in CONV_IMPLS:
        raise ConfigError(f"{where}={name!r}; expected one of {CONV_IMPLS}")
    return name


def process_default() -> str:
    """The request when no argument or block gives one: `$JAXDL_CONV_IMPL`, else "auto".

    The only place the environment is read (at trace time, so it may be set
    after import).
    """
    return check_impl(os.environ.get(ENV_VAR, "auto"), ENV_VAR)


def current_request(impl: str | None = None) -> str:
    """`impl` if given, else the innermost `conv_implementation`, else `process_default()`."""
    if impl:
        return check_impl(impl, "impl")
    return _REQUEST.get() or process_default()


@contextlib.contextmanager
def conv_implementation(name: str):
    """Trace convolutions without an explicit `impl` with ``name`` inside the block.

    ``name`` is one of ``CONV_IMPLS``; "" keeps the current request. The choice
    is read at trace time, so it applies to steps traced in the block. Backed by
    a context variable: threads and asyncio tasks each see their own.
    """
    if not name:
        yield
        return
    token = _REQUEST.set(check_impl(name, "convolution implementation"))
    try:
        yield
    finally:
        _REQUEST.reset(token)
