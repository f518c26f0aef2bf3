"""Logistic regression on breast_cancer (binary) — or iris/wine/digits (multinomial).

jaxdl minimises the same objective as scikit-learn's ``LogisticRegression``
(cross-entropy plus an L2 penalty ``1/(2C)·||w||²`` on the weights, not the
bias): the penalty is the optimizer's weight decay ``1/(C·N)`` on the mean loss,
with full-batch Adam run to convergence. Expected on breast_cancer: test
accuracy ≈ 0.98, equal to scikit-learn's (timing: docs/CLASSICAL_RESULTS.md).
"""

from __future__ import annotations

from flax import nnx
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.sklearn import load_sklearn
from jaxdl.evaluation.plots import save_learning_curves
from jaxdl.models.linear import LogisticRegression
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.workdir import fit_summary
from jaxdl.config_schema import POSITIVE, reads_transfer


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = {**reads_transfer("frozen", "lr_multipliers"),
                 "model.C": POSITIVE}  # scikit-learn refuses C <= 0


def get_config():
    config = default_config()
    config.experiment = "logistic_regression"
    config.data = dict(name="breast_cancer", test_fraction=0.25, split_seed=0)
    config.model = dict(C=1.0)  # inverse regularisation strength, as scikit-learn
    config.optimizer.update(name="adam", lr=0.05, schedule="cosine")
    config.train.batch_size = 0  # 0: the whole training split (full batch)
    config.train.update(num_steps=3000, steps_per_loop=100, log_every=500)
    return config


def run(config, workdir: str | None):
    splits, info = load_sklearn(config.data.name, test_fraction=config.data.test_fraction,
                                seed=config.data.split_seed)
    train, test = splits["train"], splits["test"]
    n = len(train["y"])
    if config.train.batch_size in (0, n):
        config.train.batch_size = n
    # sklearn: C·Σ loss + ½||w||²  ⇔  mean loss + ||w||²/(2·C·N): decay 1/(C·N).
    config.optimizer.weight_decay = 1.0 / (config.model.C * n)
    binary = info.num_classes == 2
    task = task_lib.binary_classification() if binary else task_lib.classification()
    model = LogisticRegression(info.num_features, info.num_classes, rngs=nnx.Rngs(config.seed))
    result = fit(model, task, ArrayDataset(train, name="train"),
                 eval_data={"test": ArrayDataset(test, name="test")}, config=config,
                 workdir=workdir)
    save_learning_curves(workdir, result.history)
    sk = SkLogisticRegression(C=config.model.C, max_iter=10_000).fit(train["x"], train["y"])
    baseline = {"test": {"accuracy": float(sk.score(test["x"], test["y"]))},
                "train": {"accuracy": float(sk.score(train["x"], train["y"]))}}
    return fit_summary(config.experiment, result, config,
                       baselines={"sklearn_logistic_regression": baseline})
