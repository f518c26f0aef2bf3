"""Engine features: k steps per dispatch, gradient accumulation, bf16 compute, EMA,
and the persistent compilation cache."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset, gather_eval_batch
from jaxdl.errors import ConfigError
from jaxdl.metrics import compute_metrics
from jaxdl.models.mlp import MLP
from jaxdl.train import step as step_lib
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.train.state import create_train_state, split_model

RNG = np.random.default_rng(0)
X = RNG.normal(size=(128, 8)).astype(np.float32)
Y = (X[:, 0] + X[:, 2] > 0).astype(np.int32)


def _config(**train):
    c = default_config()
    c.train.batch_size = 16
    c.train.num_steps = 12
    c.train.log_every = 6
    c.train.eval_train = False
    c.train.progress_bar = False
    c.optimizer.lr = 0.01
    for key, value in train.items():
        c.train[key] = value
    return c


def _fit(config, **kw):
    model = MLP(8, (16,), 2, dropout=0.0, rngs=nnx.Rngs(0))
    return fit(model, task_lib.classification(), ArrayDataset({"x": X, "y": Y}),
               eval_data={"test": ArrayDataset({"x": X[:40], "y": Y[:40]}, name="test")},
               config=config, **kw)


def _one_step_setup(task=None, **step_kw):
    model = MLP(8, (16,), 2, rngs=nnx.Rngs(0))
    graphdef, _, params, model_state = split_model(model)
    tx = optax.sgd(0.1)
    state = create_train_state(params, model_state, tx, seed=0, ema=True)
    step = jax.jit(step_lib.make_train_step(graphdef, task or task_lib.classification(), tx,
                                            **step_kw))
    batch = {"x": jnp.asarray(X[:32]), "y": jnp.asarray(Y[:32]), "mask": jnp.ones(32)}
    return state, step, batch


def test_k_steps_per_dispatch_are_bitwise_equal_to_single_steps():
    one = _fit(_config(steps_per_loop=1))
    five = _fit(_config(steps_per_loop=5))  # 12 steps: 5 + 1 (log boundary) + 5 + 1
    assert one.steps == five.steps == 12
    assert one.params_sha256 == five.params_sha256  # bitwise on CPU
    assert [e for e in one.history if e["split"] == "train"] == \
        [e for e in five.history if e["split"] == "train"]
    assert [e["step"] for e in one.history if e["split"] == "train"] == [6, 12]


def test_grad_accumulation_equals_one_big_batch_step():
    state, big_step, batch = _one_step_setup()
    _, accum_step, _ = _one_step_setup(grad_accum_steps=4)
    big, big_stats = big_step(state, batch)
    accum, accum_stats = accum_step(state, batch)
    for a, b in zip(jax.tree.leaves(accum.params), jax.tree.leaves(big.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not np.allclose(jax.tree.leaves(big.params)[0], jax.tree.leaves(state.params)[0])
    # Streamed metric sums cover all 32 examples in both cases.
    assert float(accum_stats["metrics"]["accuracy"]["count"]) == 32.0
    np.testing.assert_allclose(accum_stats["metrics"]["loss"]["loss_sum"],
                               big_stats["metrics"]["loss"]["loss_sum"], rtol=1e-5)


def test_grad_accumulation_needs_a_dividing_batch():
    state, step, batch = _one_step_setup(grad_accum_steps=5)
    with pytest.raises(ConfigError, match="grad_accum_steps=5 does not divide the batch of 32"):
        step(state, batch)


def test_bf16_computes_in_bf16_and_keeps_float32_params():
    seen = []

    def forward(model, batch, rngs):
        seen.append(batch["x"].dtype)  # recorded at trace time
        return model(batch["x"], rngs=rngs)

    task = task_lib.Task(forward=forward)
    state, step, batch = _one_step_setup(task=task, compute_dtype="bfloat16")
    _, f32_step, _ = _one_step_setup(task=task)
    new, stats = step(state, batch)
    ref, _ = f32_step(state, batch)
    assert seen == [jnp.bfloat16, jnp.float32]
    for tree in (new.params, new.opt_state, new.ema_params):
        assert {str(x.dtype) for x in jax.tree.leaves(tree)} <= {"float32", "int32"}
    assert stats["metrics"]["loss"]["loss_sum"].dtype == jnp.float32
    diffs = [float(jnp.max(jnp.abs(a - b))) for a, b in
             zip(jax.tree.leaves(new.params), jax.tree.leaves(ref.params))]
    assert 0 < max(diffs) < 5e-3  # bf16 rounding, but the same update


def test_unknown_compute_dtype_is_an_error():
    with pytest.raises(ConfigError, match=r"compute_dtype='fp8'; expected one of"):
        _one_step_setup(compute_dtype="fp8")


def test_ema_follows_the_parameter_trajectory():
    state, step, batch = _one_step_setup(ema_decay=0.5)
    expected = state.params
    for _ in range(3):
        state, _ = step(state, batch)
        expected = jax.tree.map(lambda e, p: 0.5 * e + 0.5 * p, expected, state.params)
    for a, b in zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_evaluation_uses_the_ema_parameters():
    result = _fit(_config(ema_decay=0.9))
    model = MLP(8, (16,), 2, rngs=nnx.Rngs(0))
    _, graphdef_eval, _, _ = split_model(model)
    task = task_lib.classification()
    evaluate = step_lib.make_eval_step(graphdef_eval, task, gather_eval_batch)
    test = ArrayDataset({"x": X[:40], "y": Y[:40]})
    # fit evaluates in batches of min(eval_batch_size, split size): the same shapes here.
    idx, masks = (np.stack(parts) for parts in zip(*test.eval_batches(min(512, len(test)))))
    arrays = test.device_arrays()

    def metrics_with(params):
        stats = evaluate(params, result.state.model_state, arrays, idx, masks)
        return compute_metrics(task.all_metrics(), stats)

    assert result.metrics["test"] == metrics_with(result.state.ema_params)
    assert result.metrics["test"]["loss"] != metrics_with(result.state.params)["loss"]


def test_compilation_cache_writes_entries(tmp_path):
    cache = str(tmp_path / "xla_cache")
    try:
        result = _fit(_config(compilation_cache_dir=cache, num_steps=4, log_every=2))
    finally:
        from jax.experimental.compilation_cache import compilation_cache
        jax.config.update("jax_compilation_cache_dir", None)
        compilation_cache.reset_cache()
    assert result.steps == 4
    assert os.path.isdir(cache) and len(os.listdir(cache)) >= 2  # the loop and the eval


@pytest.mark.parametrize("padding,strides", [("VALID", (1, 1)), ("SAME", (2, 2)),
                                             (((1, 2), (0, 1)), (1, 2))])
def test_im2col_convolution_equals_lax_forward_and_gradients(padding, strides):
    from jaxdl.ops.conv_matmul import conv2d_matmul
    key_x, key_k = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(key_x, (2, 9, 10, 3))
    kernel = jax.random.normal(key_k, (3, 4, 3, 5))

    def lax_conv(x, k):
        return jax.lax.conv_general_dilated(x, k, strides, padding,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            precision="highest")

    def matmul_conv(x, k):
        return conv2d_matmul(x, k, strides=strides, padding=padding, precision="highest")

    want, got = lax_conv(x, kernel), matmul_conv(x, kernel)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)))  # noqa: E731
    for g_got, g_want in zip(jax.grad(loss(matmul_conv), (0, 1))(x, kernel),
                             jax.grad(loss(lax_conv), (0, 1))(x, kernel)):
        # Within 1e-5 of the gradient's scale (sums of ~50 float32 products each).
        assert float(jnp.max(jnp.abs(g_got - g_want))) <= 1e-5 * float(jnp.max(jnp.abs(g_want)))


def test_conv_seam_dispatches_to_im2col(monkeypatch):
    from jaxdl.ops import conv
    x = jnp.ones((1, 6, 6, 2))
    kernel = jnp.arange(3 * 3 * 2 * 4, dtype=jnp.float32).reshape(3, 3, 2, 4) / 10
    want = conv.conv2d(x, kernel, padding="SAME", precision="highest")
    monkeypatch.setenv("JAXDL_CONV_IMPL", "matmul")  # the process default
    jaxpr = str(jax.make_jaxpr(lambda x, k: conv.conv2d(x, k, padding="SAME"))(x, kernel))
    assert "conv_general_dilated" not in jaxpr and "dot_general" in jaxpr
    np.testing.assert_allclose(conv.conv2d(x, kernel, padding="SAME", precision="highest"),
                               want, rtol=1e-5, atol=1e-5)


def test_the_train_step_holds_no_backend_or_convolution_policy():
    # Backend and convolution policy lives in jaxdl/ops (conv_policy, scan_policy);
    # fit passes its answers to the steps as plain values.
    import re
    source = open(os.path.join(os.path.dirname(step_lib.__file__), "step.py")).read()
    found = re.findall(r"conv|cpu|default_backend|platform", source, re.IGNORECASE)
    assert found == []


def test_the_convolution_environment_variable_is_read_in_one_place():
    import pathlib
    root = pathlib.Path(step_lib.__file__).resolve().parent.parent
    readers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if "JAXDL_CONV_IMPL" in p.read_text() and "os.environ" in p.read_text())
    assert readers == ["ops/conv_policy.py"]
    from jaxdl.ops import conv_policy
    assert conv_policy.ENV_VAR == "JAXDL_CONV_IMPL"
    assert [line for line in open(conv_policy.__file__) if "os.environ" in line] == [
        '    return check_impl(os.environ.get(ENV_VAR, "auto"), ENV_VAR)\n']
