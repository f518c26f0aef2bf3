"""CNN models: shapes, parameter counts, the conv seam against PyTorch, BatchNorm modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdl.errors import ConfigError
from jaxdl.models.cnn import LeNet5, SmallCNN, TutorialCNN
from jaxdl.models.conv import Conv2d
from jaxdl.ops.conv import avg_pool, conv2d, max_pool
from jaxdl.models.resnet import ResNet18, ResNet20


def num_params(model: nnx.Module) -> int:
    return sum(int(p.size) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize(
    "make, input_shape, feature_dim",
    [
        (lambda r: TutorialCNN(rngs=r), (2, 32, 32, 3), 84),
        (lambda r: LeNet5(rngs=r), (2, 28, 28, 1), 84),
        (lambda r: SmallCNN(rngs=r), (2, 8, 8, 1), 128),
        (lambda r: ResNet20(num_classes=7, rngs=r), (2, 16, 16, 3), 64),
    ],
)
def test_output_and_feature_shapes(make, input_shape, feature_dim):
    model = make(nnx.Rngs(0))
    x = jnp.ones(input_shape)
    eval_model = nnx.view(model, deterministic=True, use_running_average=True, raise_if_not_found=False)
    logits = eval_model(x)
    assert logits.shape == (2, model.head.out_features)
    assert eval_model.features(x).shape == (2, feature_dim)
    assert isinstance(model.head, nnx.Linear) and model.head.in_features == feature_dim
    assert model.head.out_features == (7 if isinstance(model, ResNet20) else 10)


def test_tutorial_cnn_has_pytorch_tutorials_62006_parameters():
    assert num_params(TutorialCNN(rngs=nnx.Rngs(0))) == 62006


def test_resnet_parameter_counts():
    assert num_params(ResNet20(rngs=nnx.Rngs(0))) == 272_474
    # ResNet-18 is only built abstractly (eval_shape): 11M parameters are slow to init on CPU.
    abstract = nnx.eval_shape(lambda: ResNet18(rngs=nnx.Rngs(0)))
    assert num_params(abstract) == 11_173_962
    assert abstract.head.in_features == 512


def test_small_cnn_dropout_draws_from_call_time_rngs():
    model = SmallCNN(rngs=nnx.Rngs(0))
    x = jnp.ones((4, 8, 8, 1))
    a = model(x, rngs=nnx.Rngs(dropout=1))
    b = model(x, rngs=nnx.Rngs(dropout=1))
    c = model(x, rngs=nnx.Rngs(dropout=2))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    evaluation = nnx.view(model, deterministic=True)
    np.testing.assert_array_equal(np.asarray(evaluation(x)), np.asarray(model.head(model.features(x))))


@pytest.mark.parametrize("strides, padding", [(1, "VALID"), (1, "SAME"), (2, 1), (2, "VALID"), (1, ((2, 0), (1, 3)))])
def test_conv2d_matches_torch_conv2d(strides, padding):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 11, 3), dtype=np.float32)
    kernel = rng.standard_normal((3, 3, 3, 5), dtype=np.float32)
    # "highest": on GPUs the default float32 convolution is TF32 (~1e-3 error).
    ours = np.asarray(conv2d(jnp.asarray(x), jnp.asarray(kernel), strides=strides,
                             padding=padding, precision="highest"))
    x_nchw = torch.from_numpy(x.transpose(0, 3, 1, 2))
    weight_oihw = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
    if padding == "SAME" or padding == "VALID":
        torch_padding = padding.lower()
    elif isinstance(padding, int):
        torch_padding = padding
    else:  # asymmetric: torch's conv only pads symmetrically, so pad explicitly
        (top, bottom), (left, right) = padding
        x_nchw = torch.nn.functional.pad(x_nchw, (left, right, top, bottom))
        torch_padding = 0
    theirs = torch.nn.functional.conv2d(x_nchw, weight_oihw, stride=strides, padding=torch_padding)
    theirs = theirs.numpy().transpose(0, 2, 3, 1)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5)


def test_conv2d_layer_init_matches_flax_conv_and_calls_the_seam():
    ours = Conv2d(3, 4, 3, rngs=nnx.Rngs(0))
    reference = nnx.Conv(3, 4, (3, 3), rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(np.asarray(ours.kernel[...]), np.asarray(reference.kernel[...]))
    np.testing.assert_array_equal(np.asarray(ours.bias[...]), np.zeros(4, np.float32))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((1, 6, 6, 3), dtype=np.float32))
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(reference(x)), atol=1e-6)
    assert Conv2d(3, 4, 3, use_bias=False, rngs=nnx.Rngs(0)).bias is None


def test_conv_seam_rejects_bad_arguments():
    with pytest.raises(ConfigError, match=r"padding='FULL': expected 'SAME', 'VALID'"):
        Conv2d(1, 1, 3, padding="FULL", rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match=r"x shape \(1, 4, 4, 2\) and kernel shape \(3, 3, 1, 1\) do not fit"):
        conv2d(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 1, 1)))


def test_pooling():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(np.asarray(max_pool(x, 2))[0, :, :, 0], [[5.0, 7.0], [13.0, 15.0]])
    np.testing.assert_array_equal(np.asarray(avg_pool(x, 2))[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])
    assert max_pool(jnp.ones((1, 5, 5, 1)), 2).shape == (1, 2, 2, 1)  # floor, like PyTorch


def _batch_stats(model: nnx.Module) -> dict:
    stats = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(stats)}


def _small_resnet() -> ResNet20:
    model = ResNet20(rngs=nnx.Rngs(0))
    # Give the running statistics non-trivial values first (two training calls).
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 8, 8, 3), dtype=np.float32))
    model(x)
    model(x * 2.0 + 1.0)
    return model


@jax.default_matmul_precision("highest")  # batch-size-independent numerics on GPUs too
def test_batchnorm_eval_uses_running_statistics_and_leaves_them_unchanged():
    model = _small_resnet()
    before = _batch_stats(model)
    eval_model = nnx.view(model, use_running_average=True)
    x = jnp.asarray(np.random.default_rng(1).standard_normal((3, 8, 8, 3), dtype=np.float32))
    y = eval_model(x)
    after = _batch_stats(model)
    assert before.keys() == after.keys() and len(before) == 2 * 21  # mean and var of 21 BatchNorms
    for path in before:
        np.testing.assert_array_equal(before[path], after[path])
    # Running statistics, not batch statistics: each example's output is independent
    # of the rest of the batch.
    single = eval_model(x[:1])
    np.testing.assert_allclose(np.asarray(single), np.asarray(y[:1]), atol=1e-5)
    # The same holds on the trainer's path: split once, merge inside a jitted pure function.
    graphdef, params, stats = nnx.split(eval_model, nnx.Param, nnx.BatchStat)

    @jax.jit
    def apply(params, stats, x):
        merged = nnx.merge(graphdef, params, stats)
        return merged(x), nnx.state(merged, nnx.BatchStat)

    y_jit, stats_after = apply(params, stats, x)
    np.testing.assert_allclose(np.asarray(y_jit), np.asarray(y), atol=1e-5)
    for a, b in zip(jax.tree.leaves(stats), jax.tree.leaves(stats_after)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_batchnorm_train_mode_updates_running_statistics():
    model = ResNet20(rngs=nnx.Rngs(0))
    before = _batch_stats(model)
    x = jnp.asarray(np.random.default_rng(2).standard_normal((4, 8, 8, 3), dtype=np.float32))
    model(x)
    after = _batch_stats(model)
    changed = [path for path in before if not np.array_equal(before[path], after[path])]
    assert len(changed) == len(before)
    # momentum 0.9: the stem's mean becomes 0.1 * the batch mean of the stem conv.
    stem_out = np.asarray(model.stem_conv(x)).mean(axis=(0, 1, 2))
    stem_mean = np.asarray(model.stem_bn.mean[...])
    np.testing.assert_allclose(stem_mean, 0.1 * stem_out, rtol=1e-5, atol=1e-6)
