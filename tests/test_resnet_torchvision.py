"""torchvision ResNet weights in jaxdl's ImageNet ResNets: name and layout
conversion, errors, the `transfer.init_from` route, and (with torchvision
installed: `pip install -e .[test,torchvision]`) logits equal to torchvision's."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx

from conftest import tiny_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.errors import CheckpointError, ShapeMismatchError
from jaxdl.models.resnet import resnet18_imagenet, resnet50_imagenet
from jaxdl.optim import param_path
from jaxdl.pretrained.safetensors_format import write_safetensors
from jaxdl.pretrained.torchvision_resnet import convert_state_dict
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.transfer import load_pretrained, maybe_init_from

_LAYOUTS = {"resnet18": ((2, 2, 2, 2), False), "resnet50": ((3, 4, 6, 3), True)}


def _torchvision_layout(arch: str, num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """torchvision's state_dict names and shapes of `arch` (checked against
    torchvision itself in `test_torchvision_layout_matches_the_test_layout`)."""
    blocks, bottleneck = _LAYOUTS[arch]
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(name, c):
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{field}"] = (c,)
        shapes[f"{name}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    cin = 64
    for stage, n in enumerate(blocks):
        width = 64 * 2**stage
        cout = width * 4 if bottleneck else width
        for i in range(n):
            p = f"layer{stage + 1}.{i}"
            convs = ([(width, cin, 1, 1), (width, width, 3, 3), (cout, width, 1, 1)]
                     if bottleneck else [(width, cin, 3, 3), (width, width, 3, 3)])
            for j, shape in enumerate(convs, 1):
                shapes[f"{p}.conv{j}.weight"] = shape
                bn(f"{p}.bn{j}", shape[0])
            if i == 0 and (stage > 0 or cin != cout):
                shapes[f"{p}.downsample.0.weight"] = (cout, cin, 1, 1)
                bn(f"{p}.downsample.1", cout)
            cin = cout
    shapes["fc.weight"], shapes["fc.bias"] = (num_classes, cin), (num_classes,)
    return shapes


def _random_state_dict(arch: str, seed: int = 0, num_classes: int = 1000) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in _torchvision_layout(arch, num_classes).items():
        if name.endswith("num_batches_tracked"):
            out[name] = np.array(7, np.int64)
        elif name.endswith("running_var"):
            out[name] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        else:
            out[name] = rng.normal(0, 0.1, shape).astype(np.float32)
    return out


def _leaves(model) -> dict[str, np.ndarray]:
    _, params, rest = nnx.split(model, nnx.Param, ...)
    flat = {}
    for tree in (params.to_pure_dict(), rest.to_pure_dict()):
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            flat[param_path(path)] = np.asarray(leaf)
    return flat


def _logits(model, images: np.ndarray) -> np.ndarray:
    eval_model = nnx.view(model, use_running_average=True)
    with jax.default_matmul_precision("highest"):
        return np.asarray(eval_model(jax.numpy.asarray(images)))


def test_safetensors_state_dict_loads_transposed_into_resnet18(tmp_path):
    state = _random_state_dict("resnet18")
    path = str(tmp_path / "resnet18.safetensors")
    write_safetensors(path, state)
    model = resnet18_imagenet(1000, rngs=nnx.Rngs(0))
    report = load_pretrained(model, path)
    leaves = _leaves(model)
    assert report.step == -1 and report.reinitialised == []
    assert len(report.loaded) == len(leaves) == 102  # 20 convs, 20 BatchNorms x 4, fc x 2
    np.testing.assert_array_equal(leaves["stem_conv/kernel"],
                                  state["conv1.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(leaves["blocks/2/shortcut_conv/kernel"],
                                  state["layer2.0.downsample.0.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(leaves["blocks/7/bn2/var"], state["layer4.1.bn2.running_var"])
    np.testing.assert_array_equal(leaves["blocks/5/bn1/scale"], state["layer3.1.bn1.weight"])
    np.testing.assert_array_equal(leaves["head/kernel"], state["fc.weight"].T)


def test_converter_lists_every_unexpected_and_misshaped_tensor():
    state = _random_state_dict("resnet18")
    state["layer1.0.se.weight"] = np.zeros(3, np.float32)
    state["classifier.bias"] = np.zeros(3, np.float32)
    state["layer1.0.conv1.weight"] = np.zeros((64, 64), np.float32)
    with pytest.raises(CheckpointError) as error:
        convert_state_dict(state, source="r.pth")
    message = str(error.value)
    assert "r.pth is not a torchvision ResNet state_dict (3 tensor(s))" in message
    for name in ("layer1.0.se.weight", "classifier.bias",
                 "layer1.0.conv1.weight: shape (64, 64), expected 4 dimensions"):
        assert name in message


def test_missing_and_misshaped_tensors_against_the_model_are_listed(tmp_path):
    state = _random_state_dict("resnet18", num_classes=10)
    del state["layer4.1.bn2.running_mean"]
    path = str(tmp_path / "r18.safetensors")
    write_safetensors(path, state)
    with pytest.raises(ShapeMismatchError) as error:
        load_pretrained(resnet18_imagenet(1000, rngs=nnx.Rngs(0)), path)
    message = str(error.value)
    assert "(3 parameter(s) not explained by config.transfer.dont_load)" in message
    assert "blocks/7/bn2/mean: missing in checkpoint, model has (512,)" in message
    assert "head/kernel: checkpoint (512, 10) vs model (512, 1000)" in message
    assert "head/bias: checkpoint (10,) vs model (1000,)" in message


def test_fine_tune_from_a_torchvision_file_through_init_from(tmp_path):
    """A 1000-class torchvision ResNet-18 file, a new 3-class head, the stem frozen."""
    state = _random_state_dict("resnet18", seed=1)
    path = str(tmp_path / "resnet18.safetensors")
    write_safetensors(path, state)
    config = tiny_config(num_steps=2, batch_size=6, eval_train=True, optimizer__lr=0.01)
    config.transfer.init_from = path
    config.transfer.dont_load = ("^head/",)
    config.transfer.frozen = ("^stem_",)
    config.transfer.lr_multipliers = (("^blocks/", 0.1),)
    model = resnet18_imagenet(3, rngs=nnx.Rngs(0))
    fresh_head = _leaves(model)["head/kernel"]
    report = maybe_init_from(model, config, str(tmp_path / "run"))
    assert report.reinitialised == ["head/bias", "head/kernel"]
    assert len(report.loaded) == 100
    rng = np.random.default_rng(0)
    labels = (np.arange(12) % 3).astype(np.int32)
    images = rng.normal(size=(12, 32, 32, 3)).astype(np.float32) + labels[:, None, None, None]
    result = fit(model, task_lib.classification(), ArrayDataset({"x": images, "y": labels},
                 name="train"), config=config, workdir=str(tmp_path / "run"))
    params = {param_path(p): np.asarray(v)
              for p, v in jax.tree_util.tree_flatten_with_path(result.state.params)[0]}
    np.testing.assert_array_equal(params["stem_conv/kernel"],
                                  state["conv1.weight"].transpose(2, 3, 1, 0))
    assert not np.array_equal(params["blocks/0/conv1/kernel"],
                              state["layer1.0.conv1.weight"].transpose(2, 3, 1, 0))
    assert not np.array_equal(params["head/kernel"], fresh_head)
    assert np.isfinite(result.metrics["train"]["loss"])


def _torch_model(arch: str, seed: int):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(seed)
    net = getattr(torchvision.models, arch)(weights=None, num_classes=10)
    with torch.no_grad():  # BatchNorm statistics and affine terms that matter
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return torch, net.eval()


def test_torchvision_layout_matches_the_test_layout():
    for arch in _LAYOUTS:
        _, net = _torch_model(arch, 0)
        real = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        assert real == _torchvision_layout(arch, num_classes=10)


@pytest.mark.parametrize("arch,suffix", [("resnet18", ".pth"), ("resnet50", ".safetensors")])
def test_torchvision_resnet_logits_equal_in_eval_mode(tmp_path, arch, suffix):
    torch, net = _torch_model(arch, seed=3)
    path = str(tmp_path / f"{arch}{suffix}")
    if suffix == ".pth":
        torch.save(net.state_dict(), path)
    else:
        write_safetensors(path, {k: v.numpy() for k, v in net.state_dict().items()})
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    model = {"resnet18": resnet18_imagenet, "resnet50": resnet50_imagenet}[arch](
        10, rngs=nnx.Rngs(0))
    load_pretrained(model, path)
    got = _logits(model, images)
    assert got.shape == expected.shape == (2, 10)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
