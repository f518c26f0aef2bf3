"""The direct C++ convolution kernels: repeatable bits, sharded batches, vmap, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import check_on_forced_devices

from jaxdl.kernels import conv_direct, isa

pytestmark = pytest.mark.skipif(
    not conv_direct.LIBRARY.available(),
    reason=f"no native conv: {conv_direct.LIBRARY.unavailable_reason()}")


def _builds_here() -> list[str]:
    """The conv builds this CPU runs (the first is the one this process loaded)."""
    if not conv_direct.LIBRARY.available():
        return []
    return [b for b in isa.runnable(isa.cpu_features()) if b in conv_direct.LIBRARY.builds]


def build_checks() -> dict:
    """The loaded build against XLA's convolution, forward and both gradients, to
    rounding, with bits that repeat; an output width (13) not a multiple of either
    vector width and 19 images (kernel-gradient groups of 8, 8, 3)."""
    x, kernel, dy = _arrays(x_shape=(19, 11, 15, 3), kernel_shape=(3, 3, 3, 7), seed=1)
    def grads(fn):
        y, pullback = jax.vjp(fn, x, kernel)
        return (y, *pullback(dy))
    got = [np.asarray(a) for a in grads(jax.jit(conv_direct.conv2d_with_grad))]
    want = grads(_lax)
    again = [np.asarray(a) for a in grads(jax.jit(conv_direct.conv2d_with_grad))]
    return {"build": conv_direct.LIBRARY.build_in_use(),
            **{f"{name} to rounding": bool(np.allclose(g, w, rtol=1e-4, atol=1e-4))
               for name, g, w in zip(("output", "input gradient", "kernel gradient"), got, want)},
            "bits repeat": all(np.array_equal(g, a) for g, a in zip(got, again))}


def _lax(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision="highest")


def _arrays(x_shape=(19, 12, 21, 3), kernel_shape=(3, 5, 3, 10), seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=x_shape), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=kernel_shape), jnp.float32)
    dy = jnp.asarray(rng.normal(size=_lax(x, kernel).shape), jnp.float32)
    return x, kernel, dy


def test_the_kernel_gradient_repeats_bit_for_bit():
    # 19 images: groups of 8, 8 and 3, taken by whichever thread is free.
    x, kernel, dy = _arrays()
    first = np.asarray(conv_direct.kernel_grad(x, dy))
    for _ in range(5):
        assert np.array_equal(np.asarray(conv_direct.kernel_grad(x, dy)), first)
    _, pullback = jax.vjp(lambda k: _lax(x, k), kernel)
    np.testing.assert_allclose(first, pullback(dy)[0], rtol=1e-4, atol=1e-4)


def test_padding_is_added_while_copying_the_image():
    x, kernel, _ = _arrays(x_shape=(3, 7, 9, 2), kernel_shape=(3, 4, 2, 5))
    got = conv_direct.conv2d(x, kernel, padding=(2, 3))
    want = jax.lax.conv_general_dilated(x, kernel, (1, 1), ((2, 2), (3, 3)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision="highest")
    assert got.shape == want.shape == (3, 9, 12, 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_vmap_loops_over_the_mapped_axis():
    x, kernel, _ = _arrays(x_shape=(2, 9, 9, 2), kernel_shape=(3, 3, 2, 4))
    kernels = jnp.stack([kernel, -kernel, 2 * kernel])
    got = jax.vmap(conv_direct.conv2d, in_axes=(None, 0))(x, kernels)
    for k, one in enumerate(kernels):
        np.testing.assert_allclose(got[k], _lax(x, one), rtol=1e-5, atol=1e-5)


def test_a_nan_pixel_reaches_exactly_the_outputs_that_read_it():
    x, kernel, _ = _arrays(x_shape=(2, 9, 9, 2), kernel_shape=(3, 3, 2, 4))
    x = x.at[1, 4, 4, 0].set(jnp.nan)
    nan = np.isnan(np.asarray(conv_direct.conv2d(x, kernel)))
    expected = np.zeros(nan.shape, bool)
    expected[1, 2:5, 2:5, :] = True  # outputs whose 3x3 window covers (4, 4)
    assert np.array_equal(nan, expected)


def test_calling_an_unavailable_kernel_says_why(monkeypatch):
    monkeypatch.setattr(conv_direct.LIBRARY, "_ok", False)
    monkeypatch.setattr(conv_direct.LIBRARY, "_why", "no C++ compiler: CXX='c++' is not on PATH")
    x, kernel, _ = _arrays(x_shape=(1, 5, 5, 1), kernel_shape=(3, 3, 1, 1))
    with pytest.raises(RuntimeError, match=r"conv_direct.cc is unavailable: no C\+\+ compiler"):
        conv_direct.conv2d.__wrapped__(x, kernel)
    assert not conv_direct.available()
    from jaxdl.ops import conv_policy  # so the dispatch's table takes the GEMMs instead
    facts = conv_policy.Facts("cpu", x.shape, (3, 3), (1, 1), 1, True, True)
    assert conv_policy.resolve("direct", facts) == "blocked"


SHARDED = '''
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from jaxdl.kernels import conv_direct, isa
mesh = Mesh(np.array(jax.devices()), ("data",))
rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(16, 10, 12, 3)), jnp.float32)
kernel = jnp.asarray(rng.normal(size=(3, 3, 3, 5)), jnp.float32)
dy = jnp.asarray(rng.normal(size=(16, 8, 10, 5)), jnp.float32)
images = NamedSharding(mesh, P("data"))
xs, dys = jax.device_put(x, images), jax.device_put(dy, images)
forward = jax.jit(conv_direct.conv2d)
grad = jax.jit(conv_direct.kernel_grad)
y = forward(xs, kernel)
hlo = forward.lower(xs, kernel).compile().as_text() + grad.lower(xs, dys).compile().as_text()
calls = [l for l in hlo.split("\\\\n") if 'custom_call_target="jaxdl_conv' in l]
import json
print(json.dumps({
    "devices": len(jax.devices()),
    "output sharded by image": tuple(y.sharding.spec) == ("data",),
    "no all-gather": "all-gather" not in hlo,
    "2 images per kernel call": all(" f32[2," in l.split("custom-call(")[0]
                                    or "f32[3,3,3,5]" in l.split("custom-call(")[0] for l in calls),
    "same output": bool(np.allclose(y, forward(x, kernel), rtol=1e-6)),
    "same kernel gradient": bool(np.allclose(grad(xs, dys), grad(x, dy), rtol=1e-5, atol=1e-5)),
}))
'''


def test_batch_sharded_images_stay_on_their_devices_and_the_gradient_is_summed():
    # 8 devices; output sharded by image; no all-gather; 2 images per call; the
    # same output, and the same kernel gradient once the devices' sums are added.
    check_on_forced_devices(SHARDED, {"devices": 8, "output sharded by image": True,
                                      "no all-gather": True, "2 images per kernel call": True,
                                      "same output": True, "same kernel gradient": True})


@pytest.mark.parametrize("build", _builds_here())
def test_every_build_this_cpu_runs_matches_xla_and_repeats_its_bits(build, monkeypatch):
    # The build a process loads is fixed at its first kernel call: this process's
    # own build here, each lower one in a process started with JAXDL_NATIVE_ISA.
    expected = {"build": build, "output to rounding": True, "input gradient to rounding": True,
                "kernel gradient to rounding": True, "bits repeat": True}
    if build == conv_direct.LIBRARY.build_in_use():
        assert build_checks() == expected
        return
    monkeypatch.setenv(isa.ENV_VAR, build)
    check_on_forced_devices("import json, sys; sys.path.insert(0, 'tests'); import test_conv_native "
                            "as t; print(json.dumps(t.build_checks()))", expected, devices=1)


def test_fit_scans_steps_on_native_convolutions_and_not_on_xla_ones():
    from benchmarks.workloads import FitPath, cnn_workload
    from jaxdl.ops import conv
    from jaxdl.ops.scan_policy import steps_per_dispatch

    workload = cnn_workload(num_examples=256)

    def steps_per_loop_kept(impl):
        with conv.conv_implementation(impl):  # read when the step is traced
            path = FitPath(workload)
            return steps_per_dispatch(8, path.step_fn, path.state, path.source.make_batch,
                                      path.arrays, path.source.step_inputs(0, 1)[0])

    assert steps_per_loop_kept("auto") == 8  # the tutorial CNN on the C++ kernels
    assert steps_per_loop_kept("lax") == 1   # XLA's convolution: one step per dispatch
