"""Deeper or wider? MLPs of (nearly) equal parameter count on 8×8 digits.

For each depth, the width is chosen so that the MLP has about
``config.model.param_budget`` parameters; each is trained with the same
optimizer and steps over several seeds. Writes a table (mean ± std test
accuracy per depth) and ``plots/depth_vs_width.png``. The measured table is in
docs/CLASSICAL_RESULTS.md.
"""

from __future__ import annotations

import math
import os

import numpy as np
from flax import nnx

from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.sklearn import load_sklearn
from jaxdl.evaluation.plots import plot_lines, plots_dir
from jaxdl.models.mlp import MLP
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.train.state import count_params
from jaxdl.config_schema import int_list, reads_transfer


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = {**reads_transfer("frozen", "lr_multipliers"), "model.depths": int_list(1)}


def get_config():
    config = default_config()
    config.experiment = "depth_vs_width"
    config.data = dict(name="digits", test_fraction=0.25, split_seed=0)
    config.model = dict(param_budget=12000, depths=(1, 2, 3, 4, 6), activation="relu")
    config.seeds = 3
    config.optimizer.lr = 2e-3
    config.train.update(batch_size=64, num_epochs=30, log_every=100, eval_train=False)
    return config


def width_for_budget(depth: int, budget: int, d_in: int, d_out: int) -> int:
    """The width ``w`` whose depth-``depth`` MLP has about ``budget`` parameters.

    Parameters: ``(d_in+1)w + (depth-1)(w+1)w + (w+1)d_out``; solved for ``w``.
    """
    a = depth - 1
    b = d_in + 1 + (depth - 1) + d_out
    c = d_out - budget
    if a == 0:
        return max(1, round(-c / b))
    return max(1, round((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)))


def run(config, workdir: str | None):
    splits, info = load_sklearn(config.data.name, test_fraction=config.data.test_fraction,
                                seed=config.data.split_seed)
    train = ArrayDataset(splits["train"], name="train")
    test = ArrayDataset(splits["test"], name="test")
    rows = []
    for depth in config.model.depths:
        width = width_for_budget(depth, config.model.param_budget, info.num_features,
                                 info.num_classes)
        accuracies, num_params = [], 0
        for seed in range(config.seeds):
            run_config = config.copy_and_resolve_references()
            run_config.seed = seed
            model = MLP(info.num_features, (width,) * depth, info.num_classes,
                        activation=config.model.activation, rngs=nnx.Rngs(seed))
            num_params = count_params(nnx.state(model, nnx.Param))
            result = fit(model, task_lib.classification(), train, eval_data={"test": test},
                         config=run_config)
            accuracies.append(result.metrics["test"]["accuracy"])
        rows.append({"depth": depth, "width": width, "num_params": num_params,
                     "accuracy_mean": float(np.mean(accuracies)),
                     "accuracy_std": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
                     "seeds": len(accuracies), "accuracies": accuracies})
    lines = ["| depth | width | params | test accuracy (mean ± std) |", "|---|---|---|---|"]
    lines += [f"| {r['depth']} | {r['width']} | {r['num_params']} | "
              f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} |" for r in rows]
    table_md = "\n".join(lines)
    if workdir:
        with open(os.path.join(workdir, "table.md"), "w") as f:
            f.write(table_md + "\n")
        plot_lines({"test accuracy": ([r["depth"] for r in rows],
                                      [r["accuracy_mean"] for r in rows])},
                   os.path.join(plots_dir(workdir), "depth_vs_width.png"),
                   xlabel="hidden layers (equal parameter budget)", ylabel="test accuracy",
                   errors={"test accuracy": [r["accuracy_std"] for r in rows]})
    best = max(rows, key=lambda r: r["accuracy_mean"])
    return {"experiment": config.experiment,
            "metrics": {"test": {"accuracy": best["accuracy_mean"]}},
            "table": rows, "table_markdown": table_md, "seed": config.seed,
            "steps": config.train.num_epochs * (len(train) // config.train.batch_size)}
