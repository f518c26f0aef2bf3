"""An MLP on scikit-learn's 8×8 digits, against scikit-learn's MLPClassifier.

Expected: test accuracy ≈ 0.98 (≥ 0.975); timing in docs/CLASSICAL_RESULTS.md.
"""

from __future__ import annotations

import os

from flax import nnx
from sklearn.neural_network import MLPClassifier

from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.sklearn import load_sklearn
from jaxdl.evaluation.plots import plot_learning_curves, plots_dir
from jaxdl.models.mlp import MLP
from jaxdl.recipes.baseline_cache import cached_baseline
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.workdir import fit_summary
from jaxdl.config_schema import reads_transfer


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = reads_transfer("frozen", "lr_multipliers")


def get_config():
    config = default_config()
    config.experiment = "mlp_digits"
    config.data = dict(name="digits", test_fraction=0.25, split_seed=0)
    config.model = dict(hidden=(256, 256), activation="relu", dropout=0.2)
    config.optimizer.update(name="adamw", lr=2e-3, weight_decay=1e-4, schedule="cosine")
    config.train.update(batch_size=64, num_epochs=60, eval_every=200)
    config.checkpoint.every_steps = 500
    # The reference model has its own seed: it does not change with the network's
    # seed or the grid, so a sweep fits it once (jaxdl.recipes.baseline_cache).
    config.baseline = dict(seed=0, max_iter=500)
    return config


def baselines(config, splits) -> dict:
    """The run's reference models: the same for every grid value and seed of a sweep."""
    return {"sklearn_mlp": sklearn_baseline(splits, config.baseline.seed,
                                            config.baseline.max_iter)}


def sklearn_baseline(splits, seed: int, max_iter: int = 500) -> dict:
    """scikit-learn's MLPClassifier with the same hidden sizes on the same split,
    computed once per data and settings (cached under a sweep)."""
    def compute():
        clf = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=max_iter,
                            random_state=seed)
        clf.fit(splits["train"]["x"], splits["train"]["y"])
        return {"test": {"accuracy": float(clf.score(splits["test"]["x"],
                                                     splits["test"]["y"]))}}
    arrays = {f"{split}/{k}": splits[split][k] for split in ("train", "test") for k in ("x", "y")}
    return cached_baseline("sklearn_mlp", compute, arrays=arrays,
                           settings={"hidden": (256, 256), "max_iter": max_iter, "seed": seed})


def run(config, workdir: str | None):
    splits, info = load_sklearn(config.data.name, test_fraction=config.data.test_fraction,
                                seed=config.data.split_seed)
    model = MLP(info.num_features, config.model.hidden, info.num_classes,
                activation=config.model.activation, dropout=config.model.dropout,
                rngs=nnx.Rngs(config.seed))
    result = fit(model, task_lib.classification(), ArrayDataset(splits["train"], name="train"),
                 eval_data={"test": ArrayDataset(splits["test"], name="test")},
                 config=config, workdir=workdir)
    if workdir:
        plot_learning_curves(result.history, os.path.join(plots_dir(workdir), "loss.png"))
    return fit_summary(config.experiment, result, config,
                       baselines=baselines(config, splits))
