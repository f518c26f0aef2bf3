"""The CPU convolution implementations behind the dispatch equal XLA's, gradients too;
the policy table picks them as documented; the request comes from an argument, a
context variable or the environment, never a module global."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdl.errors import ConfigError
from jaxdl.kernels import conv_direct
from jaxdl.models.conv import Conv2d
from jaxdl.ops import conv, conv_policy
from jaxdl.ops.conv_blocked import block_width, conv2d_blocked


def _lax_conv(x, kernel, strides, padding="VALID"):
    return jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision="highest")


@pytest.mark.parametrize("x_shape,kernel_shape,strides", [
    ((2, 9, 11, 3), (3, 2, 3, 4), (1, 1)),
    ((2, 9, 11, 3), (3, 3, 3, 4), (2, 1)),
    ((3, 12, 12, 1), (5, 5, 1, 6), (1, 1)),
    ((2, 13, 17, 2), (3, 4, 2, 5), (2, 3)),   # strides in both axes, cropped width
    ((2, 10, 13, 1), (3, 3, 1, 4), (1, 2)),   # blocks of 5 columns at width stride 2
    ((2, 14, 14, 6), (5, 5, 6, 16), (1, 1)),  # 16 output channels: XLA's forward or direct
])
@pytest.mark.parametrize("native", [True, False])  # C++ direct kernels; the GEMM formulation
def test_values_and_both_gradients_match_xla(x_shape, kernel_shape, strides, native,
                                             monkeypatch):
    """As accurate as XLA's own float32 convolution, against a float64 reference."""
    if native and not conv_direct.LIBRARY.available():
        pytest.skip(f"no native conv: {conv_direct.LIBRARY.unavailable_reason()}")
    if not native:
        monkeypatch.setattr(conv_direct, "available", lambda: False)
    rng = np.random.default_rng(0)
    x64 = rng.normal(size=x_shape)
    k64 = rng.normal(size=kernel_shape)
    x, kernel = jnp.asarray(x64, jnp.float32), jnp.asarray(k64, jnp.float32)

    def loss(fn):
        return lambda x, k: jnp.sum(jnp.sin(fn(x, k)))

    def value_and_grads(fn, x, k):
        return (fn(x, k), *jax.grad(loss(fn), (0, 1))(x, k))

    lax_conv = functools.partial(_lax_conv, strides=strides)
    with jax.enable_x64(True):
        exact = [np.asarray(a) for a in value_and_grads(
            lax_conv, jnp.asarray(x64, jnp.float64), jnp.asarray(k64, jnp.float64))]
    xla = value_and_grads(lax_conv, x, kernel)
    got = jax.jit(lambda x, k: value_and_grads(
        lambda x, k: conv.conv2d(x, k, strides=strides, padding="VALID", impl="direct"),
        x, k))(x, kernel)
    blocked = conv2d_blocked(x, kernel, strides)
    for name, g, w, e in zip(("output", "dx", "dkernel"), got, xla, exact):
        assert g.shape == w.shape, name
        xla_error = np.max(np.abs(np.asarray(w, np.float64) - e))
        assert np.max(np.abs(np.asarray(g, np.float64) - e)) <= 2 * xla_error + 1e-6, name
    np.testing.assert_allclose(blocked, xla[0], atol=5e-5, rtol=1e-5)


def test_block_width_is_the_widest_divisor_within_the_run_length():
    assert block_width(28, in_channels=3, stride=1) == 4   # the tutorial CNN's first layer
    assert block_width(10, in_channels=6, stride=1) == 2   # its second
    assert block_width(13, in_channels=1, stride=1) == 1   # a prime width
    assert block_width(6, in_channels=1, stride=2) == 6
    assert block_width(8, in_channels=64, stride=1) == 1


def test_auto_takes_the_direct_path_for_small_stride_1_convolutions_on_cpu(monkeypatch):
    monkeypatch.delenv(conv_policy.ENV_VAR, raising=False)
    assert jax.default_backend() == "cpu"

    def jaxpr(x_shape, kernel_shape, strides=1):
        x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
        return str(jax.make_jaxpr(
            lambda x: conv.conv2d(x, jnp.ones(kernel_shape), strides=strides))(x))

    few, many = jaxpr((1, 16, 16, 3), (5, 5, 3, 6)), jaxpr((1, 16, 16, 16), (3, 3, 16, 32))
    assert "custom_vjp_call" in few and "custom_vjp_call" in many
    if conv_direct.LIBRARY.available():  # the direct C++ forward for both
        assert "jaxdl_conv_forward" in few and "jaxdl_conv_forward" in many
        assert "conv_general_dilated" not in few + many
    else:
        # Fewer than 16 output channels: the blocked GEMM forward, no XLA conv at all.
        assert "conv_general_dilated" not in few
        # 16 or more: XLA's conv forward inside the custom VJP (blocked gradient).
        assert "conv_general_dilated" in many
    # Strided layers, images so large that the patch matrix would pass 64 MiB, and
    # images smaller than 12x12 stay on XLA's conv.
    for plain in (jaxpr((1, 16, 16, 16), (3, 3, 16, 32), strides=2),
                  jaxpr((64, 224, 224, 3), (5, 5, 3, 6)),
                  jaxpr((64, 8, 8, 1), (3, 3, 1, 32))):
        assert "custom_vjp_call" not in plain and "conv_general_dilated" in plain


@pytest.mark.parametrize("padding", ["SAME", "VALID", ((2, 1), (0, 3))])
def test_seam_direct_path_pads_like_lax(monkeypatch, padding):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2, 7, 6, 3)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(5, 3, 3, 4)), jnp.float32)
    want = _lax_conv(x, kernel, (1, 2), padding)
    with conv.conv_implementation("direct"):
        got = conv.conv2d(x, kernel, strides=(1, 2), padding=padding)
    np.testing.assert_allclose(got, want, atol=1e-5)
    explicit = conv.conv2d(x, kernel, strides=(1, 2), padding=padding, impl="direct")
    assert np.array_equal(np.asarray(explicit), np.asarray(got))


def test_unknown_implementation_is_a_config_error_naming_where(monkeypatch):
    x, kernel = jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 1))
    monkeypatch.setenv("JAXDL_CONV_IMPL", "winograd")
    with pytest.raises(ConfigError, match=r"JAXDL_CONV_IMPL='winograd'; expected one of \('auto'"):
        conv.conv2d(x, kernel)
    monkeypatch.delenv("JAXDL_CONV_IMPL")
    with pytest.raises(ConfigError, match="convolution implementation='fft'; expected one of"):
        with conv.conv_implementation("fft"):
            pass
    with pytest.raises(ConfigError, match="impl='gemm'; expected one of"):
        conv.conv2d(x, kernel, impl="gemm")
    with pytest.raises(ConfigError, match="Conv2d impl='gemm'; expected one of"):
        Conv2d(1, 1, 3, impl="gemm", rngs=nnx.Rngs(0))


def _facts(x_shape, kernel_shape, strides=(1, 1), backend="cpu", float32=True):
    return conv_policy.Facts(backend, x_shape, kernel_shape[:2], strides, kernel_shape[3],
                             float32, False)


@pytest.mark.parametrize("request_,facts,kernels_built,want", [
    ("auto", _facts((1, 16, 16, 3), (5, 5, 3, 6)), True, "direct_kernels"),
    ("auto", _facts((1, 16, 16, 3), (5, 5, 3, 6)), False, "blocked"),
    ("auto", _facts((1, 16, 16, 16), (3, 3, 16, 32)), False, "lax_forward_blocked_grad"),
    ("auto", _facts((1, 16, 16, 3), (5, 5, 3, 6), backend="gpu"), True, "lax"),
    ("auto", _facts((1, 16, 16, 16), (3, 3, 16, 32), strides=(2, 2)), True, "lax"),
    ("auto", _facts((64, 8, 8, 1), (3, 3, 1, 32)), True, "lax"),          # under 12x12
    ("auto", _facts((64, 224, 224, 3), (5, 5, 3, 6)), True, "lax"),       # patches > 2**24
    ("direct", _facts((1, 16, 16, 3), (5, 5, 3, 6), float32=False), True, "blocked"),
    ("direct", _facts((1, 16, 16, 3), (5, 5, 3, 6), strides=(2, 1)), True, "blocked"),
    ("direct", _facts((1, 16, 16, 3), (5, 5, 3, 6), backend="gpu"), True, "blocked"),
    ("lax", _facts((1, 16, 16, 3), (5, 5, 3, 6)), True, "lax"),
    ("matmul", _facts((1, 16, 16, 3), (5, 5, 3, 6)), True, "matmul"),
])
def test_the_policy_table_picks_one_implementation(request_, facts, kernels_built, want,
                                                   monkeypatch):
    monkeypatch.setattr(conv_direct, "available", lambda: kernels_built)
    assert conv_policy.resolve(request_, facts) == want


def test_the_request_is_the_argument_then_the_block_then_the_environment(monkeypatch):
    monkeypatch.setenv("JAXDL_CONV_IMPL", "matmul")
    assert conv_policy.current_request() == "matmul"
    with conv.conv_implementation("lax"):
        assert conv_policy.current_request() == "lax"
        assert conv_policy.current_request("direct") == "direct"
        with conv.conv_implementation(""):  # keeps the current one
            assert conv_policy.current_request() == "lax"
    assert conv_policy.current_request() == "matmul"
    monkeypatch.delenv("JAXDL_CONV_IMPL")
    assert conv_policy.current_request() == "auto"
    # A block in one thread is invisible to another (a context variable, no global).
    import threading
    seen = []
    with conv.conv_implementation("matmul"):
        thread = threading.Thread(target=lambda: seen.append(conv_policy.current_request()))
        thread.start()
        thread.join()
    assert seen == ["auto"]
    assert not hasattr(conv, "CONV_IMPL") and not hasattr(conv_policy, "CONV_IMPL")


def test_conv2d_layer_and_models_pass_their_impl_to_the_dispatch():
    from jaxdl.models.cnn import SmallCNN
    x = jnp.ones((1, 16, 16, 3))

    def jaxpr(module):
        call = module.features if hasattr(module, "features") else module
        return str(jax.make_jaxpr(lambda x: call(x))(x))

    assert "conv_general_dilated" in jaxpr(Conv2d(3, 4, 3, impl="lax", rngs=nnx.Rngs(0)))
    matmul = jaxpr(Conv2d(3, 4, 3, impl="matmul", rngs=nnx.Rngs(0)))
    assert "conv_general_dilated" not in matmul and "dot_general" in matmul
    with conv.conv_implementation("lax"):  # the explicit argument wins over the block
        assert "conv_general_dilated" not in jaxpr(
            SmallCNN(10, 3, image_size=16, conv_impl="matmul", rngs=nnx.Rngs(0)))


@pytest.mark.parametrize("window", [2, 3])
def test_tiled_max_pool_equals_reduce_window_bitwise_even_with_ties(window):
    # Integer-valued inputs: many ties, where the gradient's choice shows.
    x = jnp.asarray(np.random.default_rng(2).integers(0, 3, (2, 7, 9, 3)), jnp.float32)

    def reference(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1),
                                     (1, window, window, 1), "VALID")

    out = conv.max_pool(x, window)
    assert np.array_equal(np.asarray(out), np.asarray(reference(x)))
    weights = jnp.arange(out.size, dtype=jnp.float32).reshape(out.shape)
    grad = jax.grad(lambda x: jnp.sum(conv.max_pool(x, window) * weights))(x)
    want = jax.grad(lambda x: jnp.sum(reference(x) * weights))(x)
    assert np.array_equal(np.asarray(grad), np.asarray(want))
    # NaN propagates as in lax.max.
    assert np.isnan(np.asarray(conv.max_pool(x.at[0, 0, 0, 0].set(jnp.nan), window))[0, 0, 0, 0])
