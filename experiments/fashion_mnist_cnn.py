"""The MNIST CNN recipe on Fashion-MNIST (same IDX format, 10 clothing classes).

Model and optimiser as in `mnist_cnn` (`SmallCNN` at 28×28, Adam lr 1e-3 with a
cosine decay, batch 64; `jaxdl.recipes.vision.mnist_family_config`), for 10
epochs; inputs standardised with Fashion-MNIST's mean 0.2860 / std 0.3530.

Expected: test accuracy about 0.92 (two-convolution CNNs in the dataset's own
benchmark table reach 0.916-0.925); what has been measured is in
docs/VISION_RESULTS.md. The pipeline is tested end to end on IDX fixture files
(tests/test_vision_experiments.py).

Data: by default the four IDX files that Debian's package installs
(`apt-get install dataset-fashion-mnist` -> /usr/share/datasets/fashion-mnist/), else
those in data/fashion_mnist/; `--config.data.dir=DIR` reads DIR instead, and
`--config.data.download=True` fetches them (SHA-256 verified).
"""

from __future__ import annotations

from jaxdl.recipes.vision import mnist_family_config, run_image_classification
from jaxdl.config_schema import reads_transfer


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = reads_transfer("frozen", "lr_multipliers")


def get_config():
    """The configuration of this experiment (core keys plus `data` and `model`)."""
    return mnist_family_config("fashion_mnist_cnn", "fashion_mnist", mean=0.2860, std=0.3530,
                               num_epochs=10)


def run(config, workdir: str | None):
    """Train and evaluate; returns the `summary.json` payload."""
    return run_image_classification(config, workdir)
