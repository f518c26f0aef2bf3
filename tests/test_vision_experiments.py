"""The vision experiments end to end: cnn_digits' accuracy, the IDX and CIFAR-pickle
experiments on fixture files in the exact formats, BatchNorm statistics in training
and evaluation, and exact resume of a BatchNorm model with augmentation."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from conftest import REPO, load_experiment
from formats import CIFAR10_BATCHES, MNIST_FILES, cifar10_meta, cifar_batch, write_cifar, write_mnist
from jaxdl.data.augment import normalize
from jaxdl.errors import ConfigError
from jaxdl.optim import make_optimizer
from jaxdl.train.checkpoint import Checkpointer
from jaxdl.train.state import create_train_state, params_sha256, split_model
from jaxdl.recipes.vision import build_model, data_config, image_task, load_image_splits

def learnable_images(num: int, size: int, channels: int, seed: int):
    """uint8 images `[num, size, size, channels]` whose class (0..9) is a bright
    horizontal band at a class-specific height, on noise; and int labels `[num]`."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num) % 10)
    images = rng.integers(0, 60, (num, size, size, channels), dtype=np.uint8)
    band = size // 10
    for i, label in enumerate(labels):
        images[i, label * band:(label + 1) * band] = 255
    return images, labels


def write_idx_dataset(directory, *, n_train: int, n_test: int, gz: bool) -> None:
    """The four MNIST IDX files of learnable 28x28 images, raw or gzipped."""
    arrays = {}
    for seed, (split, count) in enumerate((("train", n_train), ("test", n_test))):
        images, labels = learnable_images(count, 28, 1, seed)
        arrays.update(zip(MNIST_FILES[split], (images[..., 0], labels.astype(np.uint8))))
    write_mnist(directory, arrays, gz=gz)


def write_cifar10_batches(root, *, per_batch: int, n_test: int):
    """`root/cifar-10-batches-py/` as in the official python version (data_batch_1..5,
    test_batch, batches.meta) of learnable 32x32 RGB images."""
    batches = {}
    for seed, name in enumerate(CIFAR10_BATCHES):
        images, labels = learnable_images(n_test if name == "test_batch" else per_batch, 32, 3, seed)
        batches[name] = cifar_batch(images, {b"labels": labels}, name)
    return write_cifar(root / "cifar-10-batches-py", batches, meta=cifar10_meta(per_batch))


def model_section(name: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"name": name})


def check_summary_metrics(summary: dict) -> None:
    for split in ("train", "test"):
        assert 0.0 <= summary["metrics"][split]["accuracy"] <= 1.0
        assert np.isfinite(summary["metrics"][split]["loss"])
        assert summary["metrics"][split]["loss"] >= 0.0


# ------------------------------------------------------------------ cnn_digits


def test_cnn_digits_default_config_reaches_0_985():
    # The unmodified default config: ~18 s on a 2-core CPU (one step per dispatch there).
    module = load_experiment("cnn_digits")
    summary = module.run(module.get_config(), None)
    assert summary["data"] == {"name": "digits", "train_examples": 1437, "test_examples": 360,
                               "image_shape": [8, 8, 1]}
    assert summary["steps"] == 40 * (1437 // 64) == 880
    check_summary_metrics(summary)
    assert summary["metrics"]["test"]["accuracy"] >= 0.985


# ------------------------------------------------------- IDX and CIFAR fixtures


@pytest.mark.parametrize("name,gz", [("mnist_cnn", True), ("fashion_mnist_cnn", False)])
def test_mnist_family_experiment_on_idx_fixture_files(tmp_path, name, gz):
    data_dir = tmp_path / "data"
    write_idx_dataset(data_dir, n_train=64, n_test=32, gz=gz)
    module = load_experiment(name)
    config = module.get_config()
    assert not config.data.download  # nothing may be fetched unless asked for
    config.data.dir = str(data_dir)
    config.train.batch_size = 16
    config.train.eval_batch_size = 64  # the recipe's 1,000 would pad 32 images to 1,000
    config.train.num_epochs = 3
    summary = module.run(config, str(tmp_path / "run"))
    assert summary["experiment"] == name
    assert summary["data"]["train_examples"] == 64 and summary["data"]["test_examples"] == 32
    assert summary["data"]["image_shape"] == [28, 28, 1]
    assert summary["steps"] == 3 * 64 // 16
    check_summary_metrics(summary)
    assert summary["metrics"]["train"]["accuracy"] >= 0.5  # the bands are learnable
    assert os.path.exists(tmp_path / "run" / "plots" / "loss.png")


def test_cifar10_tutorial_default_config_on_official_pickle_batches(tmp_path):
    write_cifar10_batches(tmp_path / "data", per_batch=8, n_test=16)
    module = load_experiment("cifar10_tutorial")
    config = module.get_config()
    config.data.dir = str(tmp_path / "data")  # the parent of cifar-10-batches-py/
    config.train.eval_batch_size = 40  # everything else is the tutorial's config
    summary = module.run(config, str(tmp_path / "run"))
    assert summary["data"] == {"name": "cifar10", "train_examples": 40, "test_examples": 16,
                               "image_shape": [32, 32, 3]}
    assert summary["num_params"] == 62006  # the tutorial's net
    assert summary["steps"] == 2 * 40 // 4  # 2 epochs of batch 4
    assert summary["baselines"]["pytorch_tutorial_reported"]["test"]["accuracy"] == 0.54
    check_summary_metrics(summary)


def test_cifar10_tutorial_normalises_to_minus_one_one_like_the_tutorial():
    config = load_experiment("cifar10_tutorial").get_config()
    task = image_task(config.data, channels=3)
    seen = {}

    def model(x, rngs=None):
        seen["x"] = x
        return x

    task.predict(model, {"x": jnp.array([[[[0.0, 0.5, 1.0]]]])})
    np.testing.assert_allclose(np.asarray(seen["x"]).ravel(), [-1.0, 0.0, 1.0])
    assert task.preprocess is None  # the tutorial does not augment


def test_bad_normalisation_and_model_names_are_config_errors():
    with pytest.raises(ConfigError, match=r"normalize_mean=\(0.5,\).*expected both \(\) or both 3"):
        image_task(data_config("cifar10", normalize_mean=(0.5,), normalize_std=(0.5,)), 3)
    with pytest.raises(ConfigError, match="config.model.name='vgg'; expected one of"):
        build_model(model_section("vgg"), num_classes=10, image_shape=(8, 8, 1), seed=0)
    with pytest.raises(ConfigError, match="'tutorial_cnn' needs 32x32 images; the data has 8x8"):
        build_model(model_section("tutorial_cnn"), num_classes=10, image_shape=(8, 8, 1), seed=0)


# ------------------------------------ BatchNorm and resume (cifar10_resnet)

# cifar10_resnet's recipe (BatchNorm, crop + flip augmentation, SGD with warm-up and
# cosine) with ResNet-8 on the 8x8 digits: ResNet-20 would triple the compile time.
RESNET_OVERRIDES = {
    "model.name": "resnet8", "data.name": "digits", "data.normalize_mean": (0.3,),
    "data.normalize_std": (0.4,), "data.crop_padding": 2, "train.batch_size": 16,
    "train.eval_batch_size": 360, "train.num_steps": 12, "train.steps_per_loop": 1,
    "train.log_every": 4, "train.eval_every": 0, "train.eval_train": False,
    "checkpoint.every_steps": 4, "optimizer.warmup_steps": 3, "optimizer.lr": 0.02,
}


def resnet_config():
    config = load_experiment("cifar10_resnet").get_config()
    for key, value in RESNET_OVERRIDES.items():
        section, name = key.split(".")
        config[section][name] = value
    return config


def _run(args: list[str], workdir, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jaxdl.run", *args, f"--workdir={workdir}"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> None:
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]


@pytest.fixture(scope="module")
def resnet_runs(tmp_path_factory):
    """cifar10_resnet (BatchNorm, crop + flip) through `python -m jaxdl.run` three times:
    uninterrupted; SIGKILLed after its first checkpoint; re-run in the killed workdir.

    All share one persistent compilation cache, so only the first run compiles.
    Returns the two workdirs and the step at which the killed run's newest
    checkpoint was.
    """
    root = tmp_path_factory.mktemp("resnet")
    args = ["--config=experiments/cifar10_resnet.py"]
    args += [f"--config.{key}={value}" for key, value in RESNET_OVERRIDES.items()]
    env = dict(os.environ, PYTHONUNBUFFERED="1", JAX_PLATFORMS="cpu",
               JAX_COMPILATION_CACHE_DIR=str(root / "xla-cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    straight, killed = root / "straight", root / "killed"
    _finish(_run(args, straight, env))
    proc = _run(args, killed, env)
    checkpoints = killed / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if checkpoints.exists() and any(d.isdigit() for d in os.listdir(checkpoints)):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed_at = max(int(d) for d in os.listdir(checkpoints) if d.isdigit())
    died_early = not (killed / "summary.json").exists()
    _finish(_run(args, killed, env))
    return {"straight": straight, "killed": killed, "killed_at": killed_at,
            "died_early": died_early}


def _summary(workdir) -> dict:
    with open(os.path.join(workdir, "summary.json")) as f:
        return json.load(f)


def test_resnet_with_augmentation_resumes_bit_identically_after_sigkill(resnet_runs):
    assert resnet_runs["died_early"]  # the kill really came before the end
    assert 0 < resnet_runs["killed_at"] < RESNET_OVERRIDES["train.num_steps"]
    reference, after_resume = _summary(resnet_runs["straight"]), _summary(resnet_runs["killed"])
    assert after_resume["steps"] == reference["steps"] == 12
    assert after_resume["params_sha256"] == reference["params_sha256"]
    assert after_resume["metrics"] == reference["metrics"]  # BatchNorm statistics too


def test_batchnorm_statistics_are_trained_and_used_by_evaluation(resnet_runs):
    config = resnet_config()
    assert config.data.flip and config.data.crop_padding == 2  # augmentation was on
    splits = load_image_splits(config.data)
    fresh = build_model(config.model, num_classes=10, image_shape=(8, 8, 1), seed=config.seed)
    _, graphdef_eval, params, initial_stats = split_model(fresh)
    tx = make_optimizer(config.optimizer, params, config.train.num_steps)
    checkpointer = Checkpointer(str(resnet_runs["straight"]))
    state, _ = checkpointer.restore_latest(create_train_state(params, initial_stats, tx,
                                                              seed=config.seed))
    checkpointer.close()
    summary = _summary(resnet_runs["straight"])
    assert int(state.step) == 12 and params_sha256(state.params) == summary["params_sha256"]

    initial_leaves = jax.tree.leaves(initial_stats)
    trained_leaves = jax.tree.leaves(state.model_state)
    assert len(trained_leaves) == len(initial_leaves) == 2 * 9  # mean and var of 9 BNs
    assert all(not np.array_equal(a, b) for a, b in zip(initial_leaves, trained_leaves))

    test_x = normalize(jnp.asarray(splits["test"]["x"]), (0.3,), (0.4,))
    test_y = jnp.asarray(splits["test"]["y"])

    @jax.jit
    def eval_loss(stats):
        model = nnx.merge(graphdef_eval, state.params, stats)
        loss = optax.softmax_cross_entropy_with_integer_labels(model(test_x), test_y).mean()
        return loss, nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.Param)))

    loss_trained, stats_after = eval_loss(state.model_state)
    loss_initial, _ = eval_loss(initial_stats)
    loss_trained, loss_initial = float(loss_trained), float(loss_initial)
    # The run's reported test loss is the eval-mode loss with the trained running statistics.
    assert loss_trained == pytest.approx(summary["metrics"]["test"]["loss"], rel=1e-4)
    assert abs(loss_initial - loss_trained) > 1e-3
    for a, b in zip(jax.tree.leaves(stats_after), trained_leaves):  # evaluation leaves them
        np.testing.assert_array_equal(a, b)
