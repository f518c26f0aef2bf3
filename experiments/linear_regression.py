"""Linear regression on scikit-learn's diabetes data: closed form and gradient descent.

Both solve the same least-squares problem on the same standardised split; the
summary reports test R² and MSE for each and scikit-learn's LinearRegression as
the baseline. Expected: test R² ≈ 0.359 for all three (equal within 0.001);
timing in docs/CLASSICAL_RESULTS.md.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx
from sklearn.linear_model import LinearRegression as SkLinearRegression
from sklearn.metrics import mean_squared_error, r2_score

from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.sklearn import load_sklearn
from jaxdl.evaluation.plots import save_learning_curves
from jaxdl.models.linear import LinearRegression, least_squares, set_linear_weights
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.workdir import fit_summary
from jaxdl.config_schema import reads_transfer


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = reads_transfer("frozen", "lr_multipliers")


def get_config():
    config = default_config()
    config.experiment = "linear_regression"
    config.data = dict(name="diabetes", test_fraction=0.25, split_seed=0)
    # Full-batch gradient descent with momentum on the mean squared error.
    config.optimizer.update(name="momentum", lr=0.1, momentum=0.9)
    config.train.batch_size = 331  # the whole training split
    config.train.update(num_steps=3000, steps_per_loop=100, log_every=500,
                        eval_batch_size=512)
    return config


def run(config, workdir: str | None):
    splits, info = load_sklearn(config.data.name, test_fraction=config.data.test_fraction,
                                seed=config.data.split_seed)
    train, test = splits["train"], splits["test"]
    if config.train.batch_size > len(train["y"]):
        config.train.batch_size = len(train["y"])

    # 1) Closed form: least squares through lstsq.
    w, b = least_squares(jnp.asarray(train["x"]), jnp.asarray(train["y"]))
    closed = LinearRegression(info.num_features, rngs=nnx.Rngs(0))
    set_linear_weights(closed, w, b)
    pred = np.asarray(closed(jnp.asarray(test["x"])))
    closed_metrics = {"r2": float(r2_score(test["y"], pred)),
                      "mse": float(mean_squared_error(test["y"], pred))}

    # 2) Gradient descent through the training loop.
    model = LinearRegression(info.num_features, rngs=nnx.Rngs(config.seed))
    result = fit(model, task_lib.regression(), ArrayDataset(train, name="train"),
                 eval_data={"test": ArrayDataset(test, name="test")}, config=config,
                 workdir=workdir)
    save_learning_curves(workdir, result.history)
    gd_w = np.asarray(model.linear.kernel[...])[:, 0]
    agreement = float(np.max(np.abs(gd_w - np.asarray(w))))

    sk = SkLinearRegression().fit(train["x"], train["y"])
    sk_pred = sk.predict(test["x"])
    baseline = {"test": {"r2": float(r2_score(test["y"], sk_pred)),
                         "mse": float(mean_squared_error(test["y"], sk_pred))}}
    return fit_summary(config.experiment, result, config,
                       baselines={"sklearn_linear_regression": baseline},
                       closed_form={"test": closed_metrics},
                       max_abs_weight_difference_gd_vs_closed_form=agreement)
