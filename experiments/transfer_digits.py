"""Pretrain a small CNN on digits 0–4 (T1), transfer it to digits 5–9 (T2).

T1 is either supervised (classify digits 0–4) or self-supervised: predict
which of 4 rotations (0°, 90°, 180°, 270°) was applied to each training image of
all ten digits, labels unused (``config.pretrain.kind = 'rotation'``). T2 relabels
digits 5–9 as 0–4 and trains with 1, 2, 5, 10, 20 and all labels per class, each
budget × seed drawing its own nested label subset, in three modes: ``scratch`` (a
fresh SmallCNN), ``linear_probe`` (the pretrained backbone frozen, a new head) and
``fine_tune`` (all trained), evaluated every ``eval_every`` steps (learning curves).
Split and seeds were fixed in advance. Results: docs/TRANSFER_RESULTS.md. Run:
``python -m jaxdl.run --config=experiments/transfer_digits.py --workdir=DIR``.
"""

from __future__ import annotations

import os

from flax import nnx
from ml_collections import ConfigDict

from jaxdl.config import check_choice, default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.sklearn import load_digits_images
from jaxdl.evaluation.few_shot import few_shot_probe_run
from jaxdl.models.cnn import SmallCNN
from jaxdl.ops import conv as conv_lib
from jaxdl.recipes import transfer_experiment as sweep
from jaxdl.recipes.vision import rotation_split, select_classes
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.transfer import MODES, maybe_init_from
from jaxdl.workdir import fit_summary
from jaxdl.config_schema import Spec, int_list, not_read, reads_transfer


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = {**reads_transfer("lr_multipliers"),
                 "transfer.frozen": not_read("each downstream mode sets it"),
                 "transfer.dont_load": not_read("each downstream mode sets it"),
                 "transfer.init_from": not_read("the downstream runs start from pretrain/"),
                 "data.pretrain_classes": int_list(0, 9),  # disjoint: config_rules
                 "data.transfer_classes": int_list(0, 9),
                 "downstream.modes": Spec(tuple, element=Spec(str, choices=MODES), min_len=1,
                                          distinct=True),
                 "downstream.labels_per_class": int_list(0),  # 0: all labels
                 "model.conv_impl": Spec(str, choices=("lax", "matmul"))}


def get_config() -> ConfigDict:
    """The default configuration (labels_per_class 0 means all labels)."""
    config = default_config()
    config.experiment = "transfer_digits"
    config.data = dict(test_fraction=0.2, split_seed=0, pretrain_classes=(0, 1, 2, 3, 4),
                       transfer_classes=(5, 6, 7, 8, 9))
    # conv_impl "matmul" (im2col): XLA:CPU's convolution is slow inside the k-step scan.
    config.model = dict(hidden=128, dropout=0.5, conv_impl="matmul")
    config.optimizer.update(name="adam", lr=1e-3)
    config.train.update(batch_size=32, eval_batch_size=256, steps_per_loop=10, log_every=50)
    config.pretrain = dict(kind="supervised", num_steps=600)
    # A linear head on frozen features is a convex problem that takes larger
    # steps: linear_probe_lr is ten times the base rate, fixed before any result was seen.
    config.downstream = dict(modes=MODES, labels_per_class=(1, 2, 5, 10, 20, sweep.ALL_LABELS),
                             seeds=(0, 1, 2), num_steps=200, eval_every=10, linear_probe_lr=1e-2)
    config.report = dict(curve_steps=(10, 20, 50, 100, 200), curve_budgets=(10, 0),
                         few_shot_ks=(1, 5, 10))
    return config


def load_splits(config: ConfigDict) -> dict[str, dict]:
    """``pretrain_train/test`` (digits 0–4, or all digits rotated 4 times and labelled by
    the rotation) and ``transfer_pool/test`` (digits 5–9 as 0–4); float32 x ``[N, 8, 8, 1]``."""
    check_choice(config, "pretrain.kind", ("supervised", "rotation"))
    data = load_digits_images(test_fraction=config.data.test_fraction, seed=config.data.split_seed)
    t1, t2 = config.data.pretrain_classes, config.data.transfer_classes
    pretrain = {s: select_classes(data[s], t1) if config.pretrain.kind == "supervised"
                else rotation_split(data[s]["x"]) for s in ("train", "test")}
    return {"pretrain_train": pretrain["train"], "pretrain_test": pretrain["test"],
            "transfer_pool": select_classes(data["train"], t2),
            "transfer_test": select_classes(data["test"], t2)}


def make_model(config: ConfigDict, num_classes: int) -> SmallCNN:
    return SmallCNN(num_classes, 1, image_size=8, hidden=config.model.hidden,
                    dropout_rate=config.model.dropout, rngs=nnx.Rngs(config.seed))


def run(config: ConfigDict, workdir: str | None) -> dict:
    """Pretrain, run every mode × budget × seed, aggregate; returns the summary."""
    workdir = sweep.require_workdir(config, workdir)
    splits = load_splits(config)
    pool = ArrayDataset(splits["transfer_pool"], name="transfer_pool")
    test = ArrayDataset(splits["transfer_test"], name="test")
    num_classes, task = len(config.data.transfer_classes), task_lib.classification()
    pretrain_dir = os.path.join(workdir, "pretrain")
    pretrain_cfg = sweep.subrun_config(config, num_steps=config.pretrain.num_steps, eval_every=0)
    pretrain_cfg.checkpoint.every_steps = 200

    def pretrain_fn(sub: ConfigDict, sub_dir: str) -> dict:
        result = fit(make_model(sub, int(splits["pretrain_train"]["y"].max()) + 1), task,
                     ArrayDataset(splits["pretrain_train"], name="train"), config=sub,
                     eval_data={"test": ArrayDataset(splits["pretrain_test"])}, workdir=sub_dir)
        return fit_summary(f"{config.experiment}/pretrain", result, sub, pretrain_kind=sub.pretrain.kind)

    def configure(sub: ConfigDict) -> None:
        sweep.set_mode_transfer(sub, pretrain_dir)
        if sub.mode == "linear_probe":
            sub.optimizer.lr = config.downstream.linear_probe_lr

    def downstream_fn(sub: ConfigDict, sub_dir: str) -> dict:
        model = make_model(sub, num_classes)
        report = maybe_init_from(model, sub, sub_dir)
        return sweep.fit_downstream(model, task, pool, test, sub, sub_dir,
                                    transfer=report.as_dict() if report else None)

    with conv_lib.conv_implementation(config.model.conv_impl):
        pretrain, results = sweep.run_transfer_sweep(
            config, workdir, pretrain_config=pretrain_cfg, pretrain_fn=pretrain_fn,
            configure=configure, downstream_fn=downstream_fn)
        few_shot = few_shot_probe_run(
            make_model(pretrain_cfg, num_classes), pretrain_dir,
            {"train": splits["transfer_pool"], "test": splits["transfer_test"]},
            ks=config.report.few_shot_ks, seeds=config.downstream.seeds)
    curve_rows, curve_markdown = sweep.curve_report(config, workdir, results)
    steps = config.downstream.num_steps
    table, markdown, headline = sweep.table_report(
        workdir, results, baseline="scratch", pool_per_class=len(pool) / num_classes,
        heading=f"T2 test accuracy after {steps} steps",
        plot_title=f"T2 after {steps} steps ({config.pretrain.kind} pretraining)",
        sections=f"## Accuracy against training steps\n\n{curve_markdown}\n\n## Few-shot probe "
                 f"of the pretrained backbone\n\n{sweep.few_shot_markdown(few_shot)}")
    return sweep.sweep_summary(
        config, results, table, markdown + "\n\n" + curve_markdown, headline=headline,
        metrics={"pretrain_test": pretrain["metrics"]["test"]}, curve_table=curve_rows,
        pretrain={"workdir": "pretrain", "kind": config.pretrain.kind, "steps": pretrain["steps"]},
        few_shot=few_shot)
