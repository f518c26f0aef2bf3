"""ResNet-20 on CIFAR-10 with the standard augmentation.

He et al. (2016)'s CIFAR ResNet-20 (3 stages × 3 basic blocks, 16/32/64 channels,
BatchNorm, ~0.27M parameters); random crop with 4 pixels of padding and
horizontal flip on the device (a pure function of the step's key, so resume is
exact); inputs standardised with CIFAR-10's per-channel mean and std; SGD with
Nesterov momentum 0.9, lr 0.1 at batch 128 with 2 epochs of linear warm-up then
cosine decay, weight decay 5e-4 on kernels; 100 epochs (39,000 steps).

Expected: about 0.91–0.92 test accuracy (He et al. report 91.25% for ResNet-20
with a longer step schedule); what has been measured is in docs/VISION_RESULTS.md.
The same configuration (BatchNorm + augmentation) is tested for exact resume after
a SIGKILL on fixture batches (tests/test_vision_experiments.py).

Data: `cifar-10-batches-py/` (or its parent, or `cifar-10-python.tar.gz`) in
`--config.data.dir`, or `--config.data.download=True`.
"""

from __future__ import annotations

from jaxdl.config import default_config
from jaxdl.config_schema import reads_transfer
from jaxdl.data.augment import CIFAR10_MEAN, CIFAR10_STD
from jaxdl.recipes.vision import data_config, run_image_classification

STEPS_PER_EPOCH = 50_000 // 128


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = reads_transfer("frozen", "lr_multipliers")


def get_config():
    """The configuration of this experiment (core keys plus `data` and `model`)."""
    config = default_config()
    config.experiment = "cifar10_resnet"
    config.data = data_config("cifar10", dir="data/cifar10", download=False,
                              normalize_mean=CIFAR10_MEAN, normalize_std=CIFAR10_STD,
                              crop_padding=4, flip=True)
    config.model = dict(name="resnet20")
    config.optimizer.update(name="momentum", lr=0.1, momentum=0.9, nesterov=True,
                            weight_decay=5e-4, schedule="warmup_cosine",
                            warmup_steps=2 * STEPS_PER_EPOCH)
    config.train.update(batch_size=128, eval_batch_size=1000, num_epochs=100, log_every=100,
                        steps_per_loop=20, eval_every=10 * STEPS_PER_EPOCH)
    config.checkpoint.every_steps = 10 * STEPS_PER_EPOCH
    return config


def run(config, workdir: str | None):
    """Train and evaluate; returns the `summary.json` payload."""
    return run_image_classification(config, workdir)
