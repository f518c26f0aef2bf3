"""Small C++ CPU kernels (XLA FFI targets), compiled on first use and cached.

Each kernel source sits beside this file. On first use the build `isa.choose`
picks for this CPU (avx512, avx2 or portable: `jaxdl.kernels.isa`) is compiled
with the C++ compiler `$CXX` (default `c++`) against the XLA FFI headers that
ship with jaxlib, cached under `$JAXDL_NATIVE_CACHE` (default
`~/.cache/jaxdl/native`) by a hash of the source, the build's flags, jaxlib's
version and the compiler, loaded, and its targets registered. No compiler, a
failed build or a CPU that runs none of the kernel's builds: one warning per
library; `JAXDL_NATIVE=0`, or `JAXDL_NATIVE_ISA` below every build the kernel
has: silently off. Either way the callers take their pure-JAX paths (the same
results up to float rounding, slower on CPU).
"""

from __future__ import annotations

import ctypes
import logging
import os
import pathlib
import re
import subprocess
import threading
from typing import Callable

import jax
import numpy as np
from jax import lax
from jax.experimental.custom_partitioning import custom_partitioning
from jax.extend import core as jex_core
from jax.interpreters import mlir
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxdl.kernels import isa
from jaxdl.kernels.compile import compile_library

try:  # Shardy's rule builders are not public API yet; without them XLA all-gathers
    from jax._src.custom_partitioning_sharding_rule import (
        sdy_sharding_rule_to_mlir as _sdy_rule_to_mlir,
        str_to_sdy_sharding_rule as _sdy_rule,
    )
except ImportError:  # pragma: no cover - depends on the installed jax
    _sdy_rule = _sdy_rule_to_mlir = None

def build(source: pathlib.Path, isa_build: str) -> pathlib.Path:
    """Compile `source` for `isa_build` (one of `isa.BUILDS`, with its `isa.FLAGS`); its path."""
    return compile_library(source, isa_build, isa.FLAGS[isa_build])


class NativeLibrary:
    """One kernel source: built, loaded and registered once, on first `available()`.

    Args:
      source_name: the `.cc` file beside this module.
      targets: FFI target name -> the handler symbol the library exports.
      builds: the `isa.BUILDS` the source compiles for; `isa.choose` picks one.
      batch_partitionable: targets to mark batch-partitionable for GSPMD.
    """

    def __init__(self, source_name: str, targets: dict[str, str], *,
                 builds: tuple[str, ...] = ("portable",),
                 batch_partitionable: tuple[str, ...] = ()):
        unknown = [b for b in builds if b not in isa.BUILDS]
        if unknown or not builds:
            raise ValueError(f"builds={builds!r}; expected some of {isa.BUILDS}")
        self.source = pathlib.Path(__file__).with_name(source_name)
        self.targets, self.builds = targets, builds
        self.batch_partitionable = batch_partitionable
        self._lock = threading.Lock()
        self.reset()

    def _register(self, library: ctypes.CDLL) -> None:
        for target, symbol in self.targets.items():
            jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)),
                                        platform="cpu")
        for target in self.batch_partitionable:
            jax.ffi.register_ffi_target_as_batch_partitionable(target)

    def reset(self) -> None:
        """Forget the outcome (tests; the next `available()` tries again)."""
        self._ok: bool | None = None
        self._why = ""
        self._build: str | None = None

    def _choose(self) -> isa.Choice:
        ceiling = isa.requested()  # a bad $JAXDL_NATIVE_ISA is a ConfigError, not a fallback
        vector = any(b != "portable" for b in self.builds)
        return isa.choose(self.builds, isa.cpu_features() if vector else None, ceiling)

    def available(self) -> bool:
        """Whether the kernels are built, loaded and registered (the first call does it).

        Raises:
          ConfigError: `$JAXDL_NATIVE_ISA` is not one of `isa.BUILDS` or "auto".
        """
        with self._lock:
            if self._ok is None:
                if os.environ.get("JAXDL_NATIVE", "1") == "0":
                    self._ok, self._why = False, "JAXDL_NATIVE=0"
                    return False
                isa.requested()  # validate before anything is built
                self._ok = False
                try:
                    choice = self._choose()
                    if choice.build is None and choice.deliberate:
                        self._why = choice.reason
                        return False
                    if choice.build is None:
                        raise RuntimeError(choice.reason)
                    self._register(ctypes.cdll.LoadLibrary(str(build(self.source, choice.build))))
                    self._ok, self._build = True, choice.build
                except (OSError, RuntimeError, subprocess.SubprocessError) as error:
                    self._why = str(error)
                    logging.getLogger(__name__).warning(
                        "jaxdl: native kernel %s unavailable, using the pure-JAX path "
                        "(equal up to float rounding, slower on CPU): %s",
                        self.source.name, error)
            return self._ok

    def require(self) -> None:
        """Raise RuntimeError, with the reason, unless `available()`."""
        if not self.available():
            raise RuntimeError(f"jaxdl native kernel {self.source.name} is unavailable: "
                               f"{self._why}; check usable() before calling it")

    def unavailable_reason(self) -> str:
        """Why `available()` is False ("" when it is True or was not asked yet)."""
        return self._why

    def build_in_use(self) -> str | None:
        """The `isa.BUILDS` entry loaded (None while off or not asked yet)."""
        return self._build


def _in_rule_order(rule: str, factors: tuple[str, ...]) -> tuple[str, ...]:
    """`factors` in the order they first appear in `rule` (Shardy requires it)."""
    appearance = list(dict.fromkeys(re.findall(r"[A-Za-z_]\w*", rule)))
    return tuple(sorted(factors, key=appearance.index))


def ffi_primitive(target: str, abstract_eval: Callable, *, sharding_rule: str,
                  replicated_factors: tuple[str, ...], int_attributes: tuple[str, ...] = (),
                  leading_batch_dims: Callable | None = None,
                  multiple_results: bool = False) -> jex_core.Primitive:
    """A JAX primitive that lowers to the FFI target `target` on CPU.

    A primitive rather than a bare `jax.ffi.ffi_call`, for its lowering: XLA's
    SPMD partitioners would otherwise all-gather every sharded operand onto each
    device before an opaque custom call. The lowering carries a Shardy sharding
    rule (einsum-like, e.g. "t b z, b h -> t b z") in which only the factors not
    in `replicated_factors` may stay sharded (the kernel's independent rows), and,
    when `leading_batch_dims(avals_in)` is given, GSPMD's `num_batch_dims`.

    Args:
      target: the registered FFI target name (also the primitive's name).
      abstract_eval: `(*avals, **params) -> aval(s)`.
      sharding_rule: the Shardy rule over operands and results.
      replicated_factors: factors the kernel needs whole (contracted, recurrent).
      int_attributes: params passed to the kernel as int64 attributes.
      leading_batch_dims: for GSPMD, how many leading dims are batch dims.
      multiple_results: whether the kernel returns several arrays.
    """
    replicated_in_order = _in_rule_order(sharding_rule, replicated_factors)
    primitive = jex_core.Primitive(target)
    primitive.multiple_results = multiple_results
    # Kept for `row_partitioned`, which gives custom_partitioning the same rule.
    primitive.sharding_rule, primitive.replicated_factors = sharding_rule, replicated_in_order
    primitive.def_abstract_eval(abstract_eval)

    def lower(ctx, *args, **params):
        attributes = {}
        if leading_batch_dims is not None:
            attributes["mhlo.frontend_attributes"] = mlir.ir_attribute(
                {"num_batch_dims": str(leading_batch_dims(ctx.avals_in))})
        if jax.config.jax_use_shardy_partitioner and _sdy_rule is not None:
            rule = _sdy_rule(sharding_rule, need_replication_factors=replicated_in_order)
            attributes["sdy.sharding_rule"] = _sdy_rule_to_mlir(
                rule, [mlir.aval_to_ir_type(ctx.module_context, a) for a in ctx.avals_in],
                [mlir.aval_to_ir_type(ctx.module_context, a) for a in ctx.avals_out])
        lowering = jax.ffi.ffi_lowering(target, extra_attributes=attributes)
        return lowering(ctx, *args, **{k: np.int64(params[k]) for k in int_attributes})

    mlir.register_lowering(primitive, lower, platform="cpu")
    return primitive


def row_partitioned(primitive: jex_core.Primitive, *, rows_in: tuple, rows_out: tuple,
                    reduction_factors: tuple[str, ...] = (), **params):
    """`primitive.bind` under `custom_partitioning`: each device runs its own rows.

    Under vmap it loops over the mapped axis (custom_partitioning has no vmap rule).

    For kernels whose batch rows are independent but whose batch is not the
    leading dim of every operand (GSPMD's batch partitioner needs that): the
    operands and results are split over the mesh axes that shard the first
    operand's rows, everything else (weights) is replicated.

    Args:
      primitive: a `multiple_results` primitive from `ffi_primitive` (its Shardy
        rule and replicated factors serve here too).
      rows_in, rows_out: each operand's / result's row dim, or None: replicated,
        or, for a result whose rows were summed away (a weight gradient), summed
        over the devices (`reduction_factors` names those factors for Shardy).
      params: bound with every call (the primitive's static attributes).
    """

    def bind(*args):
        return tuple(primitive.bind(*args, **params))

    @custom_partitioning
    def call(*args):
        return bind(*args)

    def shardings(mesh, axes, rows, shapes):
        return tuple(NamedSharding(mesh, P(*[axes if dim == row else None
                                             for dim in range(len(shape.shape))]))
                     for row, shape in zip(rows, shapes))

    def row_axes(arg_shapes):
        spec = tuple(arg_shapes[0].sharding.spec)
        return spec[rows_in[0]] if len(spec) > rows_in[0] else None

    def infer(mesh, arg_shapes, result_shape):
        return shardings(mesh, row_axes(arg_shapes), rows_out, result_shape)

    def partition(mesh, arg_shapes, result_shape):
        axes = row_axes(arg_shapes)

        def per_device(*args):
            results = bind(*args)
            if axes is None or not reduction_factors:
                return results
            return tuple(lax.psum(r, axes) if row is None else r
                         for r, row in zip(results, rows_out))

        return (mesh, per_device, shardings(mesh, axes, rows_out, result_shape),
                shardings(mesh, axes, rows_in, arg_shapes))

    rule = primitive.sharding_rule
    call.def_partition(partition, infer_sharding_from_operands=infer, sharding_rule=rule,
                       need_replication_factors=primitive.replicated_factors,
                       reduction_factors=_in_rule_order(rule, reduction_factors))

    # custom_partitioning has no vmap rule: under vmap, a loop over the mapped axis.
    @jax.custom_batching.custom_vmap
    def mapped(*args):
        return call(*args)

    @mapped.def_vmap
    def _(axis_size, in_batched, *args):
        del axis_size

        def one(sliced):
            rest = iter(sliced)
            return call(*[next(rest) if b else a for a, b in zip(args, in_batched)])

        out = lax.map(one, [a for a, b in zip(args, in_batched) if b])
        return out, (True,) * len(out)

    return mapped
