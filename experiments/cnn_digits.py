"""A small CNN on scikit-learn's 8×8 digits (bundled, no download).

Model: `SmallCNN` (conv 32 → conv 64 → 2×2 max-pool → dense 128 → dropout 0.5),
Adam lr 1e-3, batch 64, 40 epochs, on the stratified 80/20 split (1,437 train /
360 test images).

Expected: test accuracy ≥ 0.985; the measured result is in docs/VISION_RESULTS.md.

Run: `python -m jaxdl.run --config=experiments/cnn_digits.py --workdir=DIR`.
"""

from __future__ import annotations

from jaxdl.config import default_config
from jaxdl.config_schema import reads_transfer
from jaxdl.recipes.vision import data_config, run_image_classification


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = reads_transfer("frozen", "lr_multipliers")


def get_config():
    """The configuration of this experiment (core keys plus `data` and `model`)."""
    config = default_config()
    config.experiment = "cnn_digits"
    config.data = data_config("digits", test_fraction=0.2, split_seed=0)
    config.model = dict(name="small_cnn", hidden=128, dropout=0.5)
    config.optimizer.name = "adam"
    config.optimizer.lr = 1e-3
    config.train.batch_size = 64
    config.train.num_epochs = 40
    config.train.log_every = 22  # one epoch: 1,437 // 64 steps
    config.train.eval_every = 220
    config.train.steps_per_loop = 11
    config.checkpoint.every_steps = 440
    return config


def run(config, workdir: str | None):
    """Train and evaluate; returns the `summary.json` payload."""
    return run_image_classification(config, workdir)
