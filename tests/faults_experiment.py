"""A tiny experiment the fault tests run as ``python -m jaxdl.run --config=<this file>``.

An MLP on scikit-learn's 8×8 digits (bundled, nothing downloads) with a
checkpoint every few steps, so a kill lands before, during or after a save and
a resumed run has many checkpoints to come back from. Small enough that one
uninterrupted run takes a few seconds on a 2-core CPU, most of it jax start-up.
"""

from __future__ import annotations

from flax import nnx

from jaxdl.config import default_config
from jaxdl.config_schema import reads_transfer
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.sklearn import load_sklearn
from jaxdl.models.mlp import MLP
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.workdir import fit_summary

# Its one fit takes config.transfer as it is.
CONFIG_SCHEMA = reads_transfer("frozen", "lr_multipliers")


def get_config():
    """Tiny digits MLP: 160 steps, a checkpoint every 8, dropout so the RNG matters."""
    config = default_config()
    config.experiment = "faults_digits"
    config.data = dict(name="digits", test_fraction=0.25, split_seed=0)
    config.model = dict(hidden=(32,), dropout=0.1)
    config.optimizer.name = "adam"
    config.optimizer.lr = 3e-3
    config.optimizer.schedule = "cosine"
    config.train.batch_size = 32
    config.train.num_steps = 160
    config.train.log_every = 8
    config.train.eval_every = 40
    config.train.eval_train = False
    config.train.progress_bar = False
    config.checkpoint.every_steps = 8
    config.checkpoint.max_to_keep = 3
    return config


def build(config):
    """The model and the datasets of ``config`` (also used in-process by tests).

    Returns:
      ``(model, train ArrayDataset [N, 64], {"test": ArrayDataset})``.
    """
    splits, info = load_sklearn(config.data.name, test_fraction=config.data.test_fraction,
                                seed=config.data.split_seed)
    model = MLP(info.num_features, config.model.hidden, info.num_classes,
                dropout=config.model.dropout, rngs=nnx.Rngs(config.seed))
    return (model, ArrayDataset(splits["train"], name="train"),
            {"test": ArrayDataset(splits["test"], name="test")})


def run(config, workdir: str | None):
    """Train, and return the ``summary.json`` payload (with ``params_sha256``)."""
    model, train, eval_data = build(config)
    result = fit(model, task_lib.classification(), train, eval_data=eval_data,
                 config=config, workdir=workdir)
    return fit_summary(config.experiment, result, config)
