"""The native patch kernel equals the pure-JAX patches bit for bit, and falls back cleanly."""

from __future__ import annotations

import logging
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import check_on_forced_devices

from jaxdl.kernels import blocked_patches as patches_kernel
from jaxdl.kernels.blocked_patches import blocked_patches, stack_patches

pytestmark = pytest.mark.skipif(not patches_kernel.available(),
                                reason=f"no native kernel: {patches_kernel.unavailable_reason()}")

# (grouped shape [..., H, G, R], kh, groups, sh, out_h, blocks)
CASES = [
    ((64, 32, 8, 12), 5, 2, 1, 28, 7),   # the tutorial CNN's first layer
    ((3, 14, 7, 12), 5, 3, 1, 10, 5),    # its second
    ((2, 13, 6, 4), 3, 2, 2, 6, 5),      # row stride 2, a spare last row
    ((2, 3, 9, 5, 2), 2, 1, 1, 8, 5),    # two leading batch dims
]


def _grouped(shape, dtype=jnp.float32):
    return jnp.asarray(np.random.default_rng(0).normal(size=shape), dtype)


@pytest.mark.parametrize("shape,kh,groups,sh,out_h,blocks", CASES)
def test_native_patches_equal_the_pure_jax_slices_bitwise(shape, kh, groups, sh, out_h, blocks):
    grouped = _grouped(shape)
    got = blocked_patches(grouped, kh, groups, sh, out_h, blocks)
    want = stack_patches(grouped, kh, groups, sh, out_h, blocks)
    assert got.shape == want.shape == (*shape[:-3], out_h, blocks, kh * groups, shape[-1])
    assert np.array_equal(np.asarray(got), np.asarray(want))
    assert "jaxdl_blocked_patches" in jax.jit(
        lambda g: blocked_patches(g, kh, groups, sh, out_h, blocks)).lower(grouped).as_text()


def test_bfloat16_is_copied_exactly():
    grouped = _grouped((2, 9, 5, 6), jnp.bfloat16)
    got = blocked_patches(grouped, 3, 2, 1, 7, 4)
    assert got.dtype == jnp.bfloat16
    assert np.array_equal(np.asarray(got, np.float32),
                          np.asarray(stack_patches(grouped, 3, 2, 1, 7, 4), np.float32))


@pytest.mark.parametrize("shape,kh,groups,sh,out_h,blocks", CASES[1:3])
def test_gradient_is_the_transpose_of_the_copy(shape, kh, groups, sh, out_h, blocks):
    grouped = _grouped(shape)
    weights = _grouped((*shape[:-3], out_h, blocks, kh * groups, shape[-1]))

    def loss(fn):
        return lambda g: jnp.sum(jnp.sin(fn(g, kh, groups, sh, out_h, blocks)) * weights)

    got = jax.jit(jax.grad(loss(blocked_patches)))(grouped)
    want = jax.jit(jax.grad(loss(stack_patches)))(grouped)
    assert np.array_equal(np.asarray(got), np.asarray(want))


def test_vmap_maps_over_an_extra_batch_axis():
    grouped = _grouped((3, 4, 9, 5, 6))  # mapped over axis 1
    got = jax.vmap(lambda g: blocked_patches(g, 3, 2, 1, 7, 4), in_axes=1)(grouped)
    want = jax.vmap(lambda g: stack_patches(g, 3, 2, 1, 7, 4), in_axes=1)(grouped)
    assert got.shape == (4, 3, 7, 4, 6, 6)
    assert np.array_equal(np.asarray(got), np.asarray(want))


def _forget(monkeypatch):
    """Make the next `available()` build again; monkeypatch restores the outcome."""
    monkeypatch.setattr(patches_kernel.LIBRARY, "_ok", None)
    monkeypatch.setattr(patches_kernel.LIBRARY, "_why", "")


def test_a_missing_compiler_falls_back_to_pure_jax_with_one_warning(monkeypatch, tmp_path,
                                                                    caplog):
    _forget(monkeypatch)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("JAXDL_NATIVE_CACHE", str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING, logger="jaxdl.kernels.build"):
        assert not patches_kernel.available()
        assert not patches_kernel.available()  # asked twice, warned once
    assert "no C++ compiler" in patches_kernel.unavailable_reason()
    assert "no-such-compiler" in patches_kernel.unavailable_reason()
    assert len([r for r in caplog.records if "blocked_patches.cc unavailable" in r.message]) == 1
    grouped = _grouped((2, 9, 5, 6))
    got = jax.jit(lambda g: blocked_patches(g, 3, 2, 1, 7, 4))
    assert "jaxdl_blocked_patches" not in got.lower(grouped).as_text()
    assert np.array_equal(np.asarray(got(grouped)),
                          np.asarray(stack_patches(grouped, 3, 2, 1, 7, 4)))


def test_a_failing_compiler_reports_its_exit_status(monkeypatch, tmp_path):
    _forget(monkeypatch)
    monkeypatch.setenv("CXX", "false")  # exits 1 without output
    monkeypatch.setenv("JAXDL_NATIVE_CACHE", str(tmp_path / "cache"))
    assert not patches_kernel.available()
    assert "exited with 1" in patches_kernel.unavailable_reason()
    assert not list((tmp_path / "cache").glob("*.so"))  # nothing half-built is left


def test_jaxdl_native_0_turns_the_kernel_off(monkeypatch):
    _forget(monkeypatch)
    monkeypatch.setenv("JAXDL_NATIVE", "0")
    assert not patches_kernel.available()
    assert patches_kernel.unavailable_reason() == "JAXDL_NATIVE=0"


SHARDED = '''
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from jaxdl.kernels.blocked_patches import blocked_patches, stack_patches
mesh = Mesh(np.array(jax.devices()), ("data",))
grouped = jax.device_put(jnp.asarray(np.random.default_rng(0).normal(size=(16, 12, 5, 6)),
                                     jnp.float32), NamedSharding(mesh, P("data")))
patches = jax.jit(lambda g: blocked_patches(g, 3, 2, 1, 10, 4))
got = patches(grouped)
hlo = patches.lower(grouped).compile().as_text()
import json
print(json.dumps({
    "devices": len(jax.devices()),
    "output sharded over data": tuple(got.sharding.spec) == ("data",),
    "no all-gather": "all-gather" not in hlo,
    "the kernel ran": "jaxdl_blocked_patches" in hlo,
    "equal values": bool(jnp.array_equal(got, stack_patches(grouped, 3, 2, 1, 10, 4))),
}))
'''


def test_batch_sharded_images_are_copied_per_device_without_an_all_gather():
    # 8 devices; output sharded over data; no all-gather; the kernel ran; equal values.
    check_on_forced_devices(SHARDED, {"devices": 8, "output sharded over data": True,
                                      "no all-gather": True, "the kernel ran": True,
                                      "equal values": True})


PORTABLE = '''
import json, jax, jax.numpy as jnp, numpy as np
from jaxdl.kernels import blocked_patches as k
grouped = jnp.asarray(np.random.default_rng(0).normal(size=(3, 14, 7, 12)), jnp.float32)
patches = jax.jit(lambda g: k.blocked_patches(g, 5, 3, 1, 10, 5))
print(json.dumps({"build": k.LIBRARY.build_in_use() if k.available() else None,
                  "the kernel ran": "jaxdl_blocked_patches" in patches.lower(grouped).as_text(),
                  "equal bits": bool(np.array_equal(patches(grouped),
                                                    k.stack_patches(grouped, 5, 3, 1, 10, 5)))}))
'''


def test_the_copy_has_one_portable_build_that_runs_under_every_isa_ceiling(monkeypatch):
    # A memcpy needs no vector ISA: JAXDL_NATIVE_ISA=portable, the lowest ceiling,
    # keeps it (and the build this process loaded is that same one).
    assert patches_kernel.LIBRARY.build_in_use() == "portable"
    monkeypatch.setenv("JAXDL_NATIVE_ISA", "portable")
    check_on_forced_devices(PORTABLE, {"build": "portable", "the kernel ran": True,
                                       "equal bits": True}, devices=1)
