"""Universal approximation: one hidden layer fits a 1-D function better as it widens.

Target ``f(x) = sin(3x) + 0.3·x²`` on [-2, 2] (noise-free training grid, a finer
test grid). For each width, a one-hidden-layer tanh MLP is trained on the mean
squared error; the summary reports test MSE per width and
``plots/universal_approximation.png`` shows the fits. Expected: test MSE falls
by orders of magnitude from width 1 to 64 (timing: docs/CLASSICAL_RESULTS.md).
"""

from __future__ import annotations

import os

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from jaxdl.config import default_config  # noqa: E402
from jaxdl.data.arrays import ArrayDataset  # noqa: E402
from jaxdl.evaluation.plots import plots_dir  # noqa: E402
from jaxdl.models.mlp import MLP  # noqa: E402
from jaxdl.train import task as task_lib  # noqa: E402
from jaxdl.train.loop import fit  # noqa: E402
from jaxdl.config_schema import Spec, int_list, reads_transfer


def target_function(x: np.ndarray) -> np.ndarray:
    """The function approximated: ``sin(3x) + 0.3 x²``."""
    return np.sin(3 * x) + 0.3 * x ** 2


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = {**reads_transfer("frozen", "lr_multipliers"),
                 "data.low": Spec(float), "data.high": Spec(float),  # low < high: config_rules
                 "model.widths": int_list(1)}


def get_config():
    config = default_config()
    config.experiment = "universal_approximation"
    config.data = dict(num_train=256, num_test=1000, low=-2.0, high=2.0)
    config.model = dict(widths=(1, 2, 4, 8, 16, 32, 64), activation="tanh")
    config.optimizer.lr = 1e-2
    config.optimizer.schedule = "cosine"
    config.train.update(batch_size=64, num_steps=3000, steps_per_loop=50, log_every=500,
                        eval_train=False)
    return config


def run(config, workdir: str | None):
    d = config.data
    x_train = np.linspace(d.low, d.high, d.num_train, dtype=np.float32)[:, None]
    x_test = np.linspace(d.low, d.high, d.num_test, dtype=np.float32)[:, None]
    train = ArrayDataset({"x": x_train, "y": target_function(x_train)}, name="train")
    test = ArrayDataset({"x": x_test, "y": target_function(x_test)}, name="test")
    rows, curves = [], {}
    for width in config.model.widths:
        model = MLP(1, (width,), 1, activation=config.model.activation,
                    rngs=nnx.Rngs(config.seed))
        result = fit(model, task_lib.regression(), train, eval_data={"test": test},
                     config=config)
        rows.append({"width": width, "test_mse": result.metrics["test"]["mse"]})
        curves[width] = np.asarray(model(jnp.asarray(x_test)))[:, 0]
    if workdir:
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(x_test[:, 0], target_function(x_test)[:, 0], "k", lw=3, label="target")
        for width, y in curves.items():
            ax.plot(x_test[:, 0], y, lw=1, label=f"width {width}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(plots_dir(workdir), "universal_approximation.png"), dpi=100)
        plt.close(fig)
    table = "\n".join(["| width | test MSE |", "|---|---|"] +
                      [f"| {r['width']} | {r['test_mse']:.2e} |" for r in rows])
    return {"experiment": config.experiment,
            "metrics": {"test": {"mse": rows[-1]["test_mse"]}},
            "table": rows, "table_markdown": table, "seed": config.seed,
            "steps": config.train.num_steps}
