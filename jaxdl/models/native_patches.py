"""The blocked patch matrix of `conv_cpu`, copied by a small C++ kernel when one can be built.

`stack_patches` is the pure-JAX definition: `kh * groups` strided slices of the
grouped image, stacked. XLA:CPU runs it at about 5 GB/s (each slice is a loop
over 12-value rows, then the concatenate copies it all again): 1.75 ms of the
tutorial CNN's 6.3 ms step on 2 cores. `blocked_patches.cc` copies the same
values with one `memcpy` per kernel row over XLA's thread pool: 0.44 ms alone,
step 6.2 -> 5.8 ms. The values are copies either way, so both paths give
bitwise identical patches, and the gradient (the transpose of the copy) is
always the pure-JAX one.

The kernel is compiled on first use with the C++ compiler `$CXX` (default
`c++`) against the XLA FFI headers that ship with jaxlib, cached under
`$JAXDL_NATIVE_CACHE` (default `~/.cache/jaxdl/native`) by a hash of the source,
jaxlib's version and the compiler, and registered as an XLA FFI target. No
compiler, a failed build or `JAXDL_NATIVE=0`: a single warning, and the
pure-JAX path, with the same results.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jex_core
from jax.interpreters import batching, mlir

try:  # Shardy's rule builders are not public API yet; without them XLA all-gathers
    from jax._src.custom_partitioning_sharding_rule import sdy_sharding_rule_to_mlir as _sdy_rule_to_mlir
    from jax._src.custom_partitioning_sharding_rule import str_to_sdy_sharding_rule as _sdy_rule
except ImportError:  # pragma: no cover - depends on the installed jax
    _sdy_rule = _sdy_rule_to_mlir = None

SOURCE = pathlib.Path(__file__).with_name("blocked_patches.cc")
TARGET = "jaxdl_blocked_patches"
CXX_FLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC", "-w")

_lock = threading.Lock()
_state: dict[str, object] = {}  # "ok": bool, "why": str, "library": ctypes.CDLL


def stack_patches(grouped: jax.Array, kh: int, groups: int, sh: int, out_h: int,
                  blocks: int) -> jax.Array:
    """Pure JAX: `[..., H, G, R]` -> `[..., out_h, blocks, kh * groups, R]` with
    `out[..., y, x, i * groups + g, :] = grouped[..., y * sh + i, x + g, :]`."""
    rows = (out_h - 1) * sh + 1
    return jnp.stack([grouped[..., i:i + rows:sh, g:g + blocks, :]
                      for i in range(kh) for g in range(groups)], axis=-2)


def _cache_dir() -> pathlib.Path:
    configured = os.environ.get("JAXDL_NATIVE_CACHE")
    if configured:
        return pathlib.Path(configured)
    return pathlib.Path(os.path.expanduser("~")) / ".cache" / "jaxdl" / "native"


def _build() -> pathlib.Path:
    """Compile `blocked_patches.cc` (or find it cached); the shared library's path.

    Raises:
      RuntimeError: no compiler, or the compiler failed (its output attached).
    """
    compiler = shutil.which(os.environ.get("CXX", "c++"))
    if compiler is None:
        raise RuntimeError(f"no C++ compiler: CXX={os.environ.get('CXX', 'c++')!r} is not on PATH")
    include = jax.ffi.include_dir()
    key = hashlib.sha256(b"\0".join([
        SOURCE.read_bytes(), jax.lib.__version__.encode(), compiler.encode(),
        " ".join(CXX_FLAGS).encode(), include.encode()])).hexdigest()[:16]
    cache = _cache_dir()
    library = cache / f"blocked_patches_{key}.so"
    if library.exists():
        return library
    cache.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: other processes (a multi-process run
    # compiling at the same moment) see either no library or a whole one.
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        built = pathlib.Path(scratch) / library.name
        result = subprocess.run([compiler, *CXX_FLAGS, f"-I{include}", str(SOURCE), "-o",
                                 str(built)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} exited with {result.returncode}: "
                               f"{(result.stderr or result.stdout)[-2000:]}")
        os.replace(built, library)
    return library


def available() -> bool:
    """Whether the native kernel is built and registered (builds it on first call)."""
    with _lock:
        if "ok" not in _state:
            _state["ok"], _state["why"] = False, ""
            if os.environ.get("JAXDL_NATIVE", "1") == "0":
                _state["why"] = "JAXDL_NATIVE=0"
            else:
                try:
                    library = ctypes.cdll.LoadLibrary(str(_build()))
                    jax.ffi.register_ffi_target(
                        TARGET, jax.ffi.pycapsule(library.JaxdlBlockedPatches), platform="cpu")
                    jax.ffi.register_ffi_target_as_batch_partitionable(TARGET)
                    _state["library"], _state["ok"] = library, True
                except (OSError, RuntimeError, subprocess.SubprocessError) as error:
                    _state["why"] = str(error)
                    logging.getLogger(__name__).warning(
                        "jaxdl: native patch kernel unavailable, using the pure-JAX "
                        "patches (same results, slower on CPU): %s", error)
        return bool(_state["ok"])


def unavailable_reason() -> str:
    """Why `available()` is False ("" when it is True or was not asked yet)."""
    return str(_state.get("why", ""))


def _patch_shape(shape, kh, groups, out_h, blocks):
    return (*shape[:-3], out_h, blocks, kh * groups, shape[-1])


# A primitive rather than a bare `jax.ffi.ffi_call`, for its lowering: XLA's SPMD
# partitioners would otherwise all-gather a batch-sharded image onto every
# device before an opaque custom call. The lowering marks the leading dims as
# batch dims (GSPMD's `num_batch_dims`, Shardy's `...` rule), so each device
# copies only its own images.
_patches_p = jex_core.Primitive("jaxdl_blocked_patches")
_patches_p.def_abstract_eval(
    lambda grouped, *, kh, groups, sh, out_h, blocks: jax.core.ShapedArray(
        _patch_shape(grouped.shape, kh, groups, out_h, blocks), grouped.dtype))


def _lower_patches(ctx, grouped, *, kh, groups, sh, out_h, blocks):
    (aval_in,), (aval_out,) = ctx.avals_in, ctx.avals_out
    batch_dims = len(aval_in.shape) - 3
    attributes = {"mhlo.frontend_attributes": mlir.ir_attribute(
        {"num_batch_dims": str(batch_dims)})}
    if jax.config.jax_use_shardy_partitioner and _sdy_rule is not None:
        rule = _sdy_rule("... h g r -> ... y x s v")  # only `...` may stay sharded
        attributes["sdy.sharding_rule"] = _sdy_rule_to_mlir(
            rule, [mlir.aval_to_ir_type(ctx.module_context, aval_in)],
            [mlir.aval_to_ir_type(ctx.module_context, aval_out)])
    lower = jax.ffi.ffi_lowering(TARGET, extra_attributes=attributes)
    return lower(ctx, grouped, kh=np.int64(kh), groups=np.int64(groups), sh=np.int64(sh))


def _batch_patches(args, dims, **params):
    # vmap: the mapped axis becomes one more leading batch dim.
    (grouped,), (dim,) = args, dims
    return _patches_p.bind(jnp.moveaxis(grouped, dim, 0), **params), 0


mlir.register_lowering(_patches_p, _lower_patches, platform="cpu")
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
