"""Pretrain a small CNN on digits 0–4 (T1), transfer it to digits 5–9 (T2).

T1 is either supervised (classify digits 0–4) or self-supervised: predict
which of 4 rotations (0°, 90°, 180°, 270°) was applied to each training image of
all ten digits, labels unused (``config.pretrain.kind = 'rotation'``). T2 relabels
digits 5–9 as 0–4 and trains with 1, 2, 5, 10, 20 and all labels per class, each
budget × seed drawing its own nested label subset, in three modes:

- ``scratch``: a fresh SmallCNN;
- ``linear_probe``: the pretrained backbone frozen (no optimizer state), a new head;
- ``fine_tune``: the pretrained backbone and a new head, all trained.

Every downstream run trains the same number of steps and is evaluated on the
same T2 test images every ``eval_every`` steps, which gives the learning curves.
The split (``load_digits_images``' stratified 80/20 with ``split_seed``) and the
seeds are fixed in advance; nothing here was tuned toward a result.

Run: ``python -m jaxdl.run --config=experiments/transfer_digits.py --workdir=DIR``
(about 55 short fits; see docs/TRANSFER_RESULTS.md for timing and results).
"""

from __future__ import annotations

import os

import numpy as np
from flax import nnx
from ml_collections import ConfigDict

from jaxdl.recipes import composed
from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.sources import LabelBudgetSource, draw_k_per_class
from jaxdl.data.vision import load_digits_images
from jaxdl.errors import ConfigError
from jaxdl.evaluation.few_shot import few_shot_probe_run
from jaxdl.evaluation.plots import plots_dir
from jaxdl.ops import conv as conv_lib
from jaxdl.models.cnn import SmallCNN
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.transfer import MODES, maybe_init_from, mode_settings
from jaxdl.workdir import fit_summary

PRETRAIN_KINDS = ("supervised", "rotation")


def get_config() -> ConfigDict:
    """The default configuration (labels_per_class 0 means all labels)."""
    config = default_config()
    config.experiment = "transfer_digits"
    config.data = dict(test_fraction=0.2, split_seed=0, pretrain_classes=(0, 1, 2, 3, 4),
                       transfer_classes=(5, 6, 7, 8, 9))
    # conv_impl: "matmul" (im2col) runs the k-step scan ~10x faster on CPU than XLA's conv.
    config.model = dict(hidden=128, dropout=0.5, conv_impl="matmul")
    config.optimizer.name = "adam"
    config.optimizer.lr = 1e-3
    config.train.batch_size = 32
    config.train.eval_batch_size = 256
    config.train.steps_per_loop = 10
    config.train.log_every = 50
    config.pretrain = dict(kind="supervised", num_steps=600)
    config.downstream = dict(
        modes=MODES, labels_per_class=(1, 2, 5, 10, 20, composed.ALL_LABELS),
        seeds=(0, 1, 2), num_steps=200, eval_every=10,
        # A linear head on frozen features is a convex problem that takes larger
        # steps; 10x the base rate, fixed before any result was seen.
        linear_probe_lr=1e-2)
    config.report = dict(curve_steps=(10, 20, 50, 100, 200), curve_budgets=(10, 0),
                         few_shot_ks=(1, 5, 10))
    return config


def load_splits(config: ConfigDict) -> dict[str, dict[str, np.ndarray]]:
    """T1 (pretraining) and T2 (transfer) splits, labels remapped to 0..n-1.

    Returns:
      ``{"pretrain_train", "pretrain_test", "transfer_pool", "transfer_test"}``,
      each ``{"x": float32 [N, 8, 8, 1], "y": int32 [N]}``. For rotation
      pretraining the pretrain splits hold every training (test) image four
      times, rotated, labelled by the rotation.
    """
    data = load_digits_images(test_fraction=config.data.test_fraction,
                              seed=config.data.split_seed)

    def select(split: str, classes) -> dict[str, np.ndarray]:
        x, y = data[split]["x"], data[split]["y"]
        keep = np.isin(y, classes)
        remap = np.full(10, -1, np.int32)
        remap[list(classes)] = np.arange(len(classes))
        return {"x": x[keep], "y": remap[y[keep]]}

    def rotated(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"x": np.concatenate([np.rot90(x, r, axes=(1, 2)) for r in range(4)]),
                "y": np.repeat(np.arange(4, dtype=np.int32), len(x))}

    kind = config.pretrain.kind
    if kind not in PRETRAIN_KINDS:
        raise ConfigError(f"config.pretrain.kind={kind!r}; expected one of {PRETRAIN_KINDS}")
    if kind == "supervised":
        pretrain = {s: select(s, config.data.pretrain_classes) for s in ("train", "test")}
    else:  # all training images, their digit labels unused
        pretrain = {s: rotated(data[s]["x"]) for s in ("train", "test")}
    return {"pretrain_train": pretrain["train"], "pretrain_test": pretrain["test"],
            "transfer_pool": select("train", config.data.transfer_classes),
            "transfer_test": select("test", config.data.transfer_classes)}


def subrun_config(config: ConfigDict, **train) -> ConfigDict:
    """A sub-run's config: the parent's optimizer and train settings, overridden."""
    sub = default_config()
    sub.experiment = config.experiment
    sub.optimizer = ConfigDict(config.optimizer.to_dict())
    sub.train = ConfigDict(config.train.to_dict())
    sub.train.progress_bar = False
    sub.train.eval_train = False
    sub.model = ConfigDict(config.model.to_dict())
    sub.data = ConfigDict(config.data.to_dict())
    sub.pretrain = ConfigDict(config.pretrain.to_dict())
    for key, value in train.items():
        sub.train[key] = value
    return sub


def make_model(config: ConfigDict, num_classes: int) -> SmallCNN:
    return SmallCNN(num_classes, 1, image_size=8, hidden=config.model.hidden,
                    dropout_rate=config.model.dropout, rngs=nnx.Rngs(config.seed))


def run(config: ConfigDict, workdir: str | None) -> dict:
    """Pretrain, run every mode × budget × seed, aggregate; returns the summary.

    Sub-runs live in ``workdir/pretrain`` and ``workdir/runs/*``; finished ones
    are skipped on a re-run, an interrupted one resumes.
    """
    if not workdir:
        raise ConfigError("transfer_digits is a composed experiment; expected --workdir=DIR")
    workdir = os.path.abspath(workdir)
    splits = load_splits(config)
    pool = ArrayDataset(splits["transfer_pool"], name="transfer_pool")
    test = ArrayDataset(splits["transfer_test"], name="test")
    num_classes = len(config.data.transfer_classes)
    task = task_lib.classification()
    ds = config.downstream

    def pretrain_fn(sub: ConfigDict, sub_dir: str) -> dict:
        model = make_model(sub, int(splits["pretrain_train"]["y"].max()) + 1)
        result = fit(model, task, ArrayDataset(splits["pretrain_train"], name="train"),
                     config=sub, eval_data={"test": ArrayDataset(splits["pretrain_test"])},
                     workdir=sub_dir)
        return fit_summary(f"{config.experiment}/pretrain", result, sub,
                           pretrain_kind=sub.pretrain.kind)

    pretrain_cfg = subrun_config(config, num_steps=config.pretrain.num_steps, eval_every=0)
    pretrain_cfg.checkpoint.every_steps = 200
    pretrain_dir = os.path.join(workdir, "pretrain")

    def make_config(mode: str, labels: int, seed: int) -> ConfigDict:
        sub = subrun_config(config, num_steps=ds.num_steps, eval_every=ds.eval_every)
        sub.seed = int(seed)
        sub.labels_per_class = int(labels)
        sub.mode = mode
        if mode == "linear_probe":
            sub.optimizer.lr = ds.linear_probe_lr
        settings = mode_settings(mode)
        sub.transfer.init_from = "" if mode == "scratch" else pretrain_dir
        sub.transfer.dont_load, sub.transfer.frozen = settings["dont_load"], settings["frozen"]
        return sub

    def downstream_fn(sub: ConfigDict, sub_dir: str) -> dict:
        model = make_model(sub, num_classes)
        report = maybe_init_from(model, sub, sub_dir)
        indices = draw_k_per_class(pool.arrays["y"], sub.labels_per_class, sub.seed)
        source = LabelBudgetSource(pool, indices, sub.train.batch_size, seed=sub.seed)
        result = fit(model, task, source, config=sub, eval_data={"test": test}, workdir=sub_dir)
        return fit_summary(f"{config.experiment}/{sub.mode}", result, sub, mode=sub.mode,
                           labels_per_class=sub.labels_per_class, train_examples=len(indices),
                           transfer=report.as_dict() if report else None)

    with composed.shared_compilation_cache(), conv_lib.conv_implementation(config.model.conv_impl):
        pretrain = composed.run_subrun(workdir, "pretrain", pretrain_cfg, pretrain_fn)
        results = composed.run_sweep(workdir, modes=ds.modes, budgets=ds.labels_per_class,
                                     seeds=ds.seeds, make_config=make_config,
                                     train_fn=downstream_fn)
        few_shot = few_shot_probe_run(
            make_model(pretrain_cfg, num_classes), pretrain_dir,
            {"train": splits["transfer_pool"], "test": splits["transfer_test"]},
            ks=config.report.few_shot_ks, seeds=ds.seeds)
    return summarize(config, workdir, pretrain, results, few_shot,
                     pool_per_class=len(pool) / num_classes)


def summarize(config: ConfigDict, workdir: str, pretrain: dict, results: list[dict],
              few_shot: dict, *, pool_per_class: float) -> dict:
    """The table, learning-curve table, plots, table.md and summary of the sweep."""
    table = composed.aggregate(results)
    markdown = composed.table_markdown(table)
    curve_rows = composed.aggregate(composed.curve_results(results, config.report.curve_steps),
                                    group=("labels_per_class", "step"))
    shown = [r for r in curve_rows
             if (0 if r["labels_per_class"] == "all" else r["labels_per_class"])
             in config.report.curve_budgets]
    curve_markdown = composed.table_markdown(shown, group=("labels_per_class", "step"))
    few_shot_lines = ["| k per class | linear probe (logistic regression) on pretrained "
                      "features |", "|---|---|"] + [
        f"| {k} | {v['accuracy_mean']:.3f} ± {v['accuracy_std']:.3f} |"
        for k, v in few_shot.items()]
    composed.write_table_files(
        workdir, f"## T2 test accuracy after {config.downstream.num_steps} steps\n\n{markdown}",
        f"## Accuracy against training steps\n\n{curve_markdown}\n\n"
        "## Few-shot probe of the pretrained backbone\n\n" + "\n".join(few_shot_lines))
    plots = plots_dir(workdir)
    composed.plot_by_mode(table, "labels_per_class", os.path.join(plots, "accuracy_vs_labels.png"),
                          x_of=lambda k: pool_per_class if k == "all" else float(k),
                          xlabel="labels per class (log; rightmost: all)", logx=True,
                          title=f"T2 after {config.downstream.num_steps} steps "
                                f"({config.pretrain.kind} pretraining)")
    for budget in config.report.curve_budgets:
        key = "all" if budget == composed.ALL_LABELS else budget
        rows = [r for r in curve_rows if r["labels_per_class"] == key]
        composed.plot_by_mode(rows, "step", os.path.join(plots, f"accuracy_vs_steps_k{key}.png"),
                              xlabel="training steps", logx=True,
                              title=f"T2 with {key} labels per class")
    return composed.composed_summary(
        config.experiment, config, [{k: r[k] for k in ("mode", "labels_per_class", "seed",
                                                         "workdir")} for r in results],
        table, markdown + "\n\n" + curve_markdown,
        metrics={"pretrain_test": pretrain["metrics"]["test"]},
        pretrain={"workdir": "pretrain", "kind": config.pretrain.kind,
                  "steps": pretrain["steps"]},
        curve_table=curve_rows, few_shot=few_shot)
