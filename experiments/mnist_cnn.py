"""A two-convolution CNN on MNIST, read from its four IDX files (see Data below).

Model: `SmallCNN` at 28×28 (conv 32@3×3 → conv 64@3×3 → 2×2 max-pool → dense 128
→ dropout 0.5), the architecture of PyTorch's and Keras's MNIST examples; inputs
standardised with MNIST's mean 0.1307 / std 0.3081 like PyTorch's example; Adam
lr 1e-3 with a cosine decay to 0 over 3 epochs, batch 64 (2,811 steps). The recipe
is `jaxdl.recipes.vision.mnist_family_config`.

Expected: test accuracy ≥ 0.99 after 3 epochs (the PyTorch and Keras examples
report about 0.99 for this architecture after 1–3 epochs); what has been measured
is in docs/VISION_RESULTS.md. The loader and the whole pipeline are tested end to
end on IDX fixture files written in the exact format (tests/test_vision_experiments.py).

Data: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
t10k-labels-idx1-ubyte (raw or .gz), by default in data/mnist/ (Debian packages no
MNIST, so there is no system directory to look in first), or in `--config.data.dir=DIR`;
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
    return mnist_family_config("mnist_cnn", "mnist", mean=0.1307, std=0.3081, num_epochs=3)


def run(config, workdir: str | None):
    """Train and evaluate; returns the `summary.json` payload."""
    return run_image_classification(config, workdir)
