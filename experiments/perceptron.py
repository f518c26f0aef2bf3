"""Rosenblatt's perceptron on a linearly separable task: iris setosa vs the rest.

Runs the mistake-driven rule online and in batch mode until a pass makes no
mistake, then runs it again from the converged weights to show that no update is
made after convergence. Baseline: scikit-learn's ``Perceptron``. Expected: 100%
training accuracy for both modes within a few epochs.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from sklearn.linear_model import Perceptron as SkPerceptron

from jaxdl.config import default_config
from jaxdl.data.formats.sklearn import load_sklearn
from jaxdl.models.perceptron import Perceptron, load_perceptron, train_perceptron
from jaxdl.train.state import count_params, params_sha256
from jaxdl.config_schema import CORE_SCHEMA, NOT_READ, POSITIVE, Spec
from flax import nnx


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = {**{k: NOT_READ for k in CORE_SCHEMA  # its own training loop reads none of these
                    if k.split(".")[0] in ("optimizer", "train", "checkpoint", "transfer", "mesh")},
                 "nan_policy": NOT_READ, "max_consecutive_skips": NOT_READ,
                 "model.lr": POSITIVE, "data.positive_class": Spec(int, low=0)}


def get_config():
    config = default_config()
    config.experiment = "perceptron"
    config.data = dict(name="iris", positive_class=0, test_fraction=0.25, split_seed=0)
    config.model = dict(lr=1.0, max_epochs=1000)
    return config


def _accuracy(model: Perceptron, x, y) -> float:
    return float(np.mean(np.asarray(model(jnp.asarray(x))) == y))


def run(config, workdir: str | None):
    splits, _ = load_sklearn(config.data.name, test_fraction=config.data.test_fraction,
                             seed=config.data.split_seed)
    binarise = lambda y: (y == config.data.positive_class).astype(np.int32)  # noqa: E731
    x_tr, y_tr = splits["train"]["x"], binarise(splits["train"]["y"])
    x_te, y_te = splits["test"]["x"], binarise(splits["test"]["y"])
    metrics, details, final = {}, {}, None
    for mode in ("online", "batch"):
        result = train_perceptron(x_tr, y_tr, mode=mode, lr=config.model.lr,
                                  max_epochs=config.model.max_epochs)
        again = train_perceptron(x_tr, y_tr, mode=mode, lr=config.model.lr,
                                 max_epochs=config.model.max_epochs, w0=result.w,
                                 tau0=result.tau)
        model = Perceptron(x_tr.shape[1])
        load_perceptron(model, result)
        metrics[mode] = {"train": {"accuracy": _accuracy(model, x_tr, y_tr)},
                         "test": {"accuracy": _accuracy(model, x_te, y_te)}}
        details[mode] = {"epochs": int(result.epochs), "updates": int(result.updates),
                         "converged": bool(result.converged),
                         "updates_after_convergence": int(again.updates)}
        final = model if mode == "online" else final
    sk = SkPerceptron(random_state=config.seed).fit(x_tr, y_tr)
    params = nnx.state(final, nnx.Param).to_pure_dict()
    return {
        "experiment": config.experiment,
        "metrics": metrics["online"],
        "metrics_by_mode": metrics,
        "training": details,
        "baselines": {"sklearn_perceptron": {"train": {"accuracy": float(sk.score(x_tr, y_tr))},
                                             "test": {"accuracy": float(sk.score(x_te, y_te))}}},
        "params_sha256": params_sha256(params),
        "num_params": count_params(params),
        "steps": details["online"]["updates"],
        "seed": config.seed,
    }
