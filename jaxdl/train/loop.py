"""``fit``: the one training loop every supervised family goes through.

The host only schedules: it computes each dispatch's batch indices (a pure
function of seed and step), launches the jitted k-step loop, and reads metrics
back at log, eval and checkpoint boundaries. Re-running with the same workdir
resumes from the newest readable checkpoint and ends bit-identical to an
uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Mapping

import jax
import numpy as np
import optax
from flax import nnx
from ml_collections import ConfigDict

from jaxdl import distributed
from jaxdl.config import validate_core
from jaxdl.data.arrays import ArrayDataset, ArrayTrainSource, gather_eval_batch
from jaxdl.errors import NonFiniteError
from jaxdl.metrics import compute_metrics
from jaxdl.ops import scan_policy
from jaxdl.optim import make_optimizer
from jaxdl.train import step as step_lib
from jaxdl.train.checkpoint import Checkpointer
from jaxdl.train.logging import MetricsLogger, progress_bar
from jaxdl.train.state import TrainState, count_params, create_train_state, params_sha256, split_model
from jaxdl.train.task import Task
from jaxdl.train.validation import check_data_fits_model


@dataclasses.dataclass
class FitResult:
    """What ``fit`` returns: the trained model and everything measured."""

    model: nnx.Module
    state: TrainState
    metrics: dict[str, dict[str, float]]  # final evaluation per split
    history: list[dict]  # every logged event, as in metrics.jsonl
    steps: int
    params_sha256: str
    num_params: int
    wall_seconds: float
    stopped_early: bool


def _next_boundary(step: int, total: int, intervals) -> int:
    nxt = total
    for every in intervals:
        if every:
            nxt = min(nxt, (step // every + 1) * every)
    return nxt


def _enable_compilation_cache(directory: str) -> None:
    """Persist compiled executables under ``directory`` (re-runs skip compiling)."""
    from jax.experimental.compilation_cache import compilation_cache
    if jax.config.jax_compilation_cache_dir != directory:
        # JAX decides once per process whether the cache is in use; a process that
        # already compiled without it must forget that decision.
        compilation_cache.reset_cache()
    jax.config.update("jax_compilation_cache_dir", directory)
    # Cache even fast compiles: the steps of small experiments compile in < 1 s.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


class _EarlyStopping:
    """Patience on one monitored ``split/metric``; its state rides in checkpoints."""

    def __init__(self, metric: str, mode: str, patience: int, saved: dict | None):
        self.metric, self.mode, self.patience = metric, mode, patience
        saved = saved or {}
        self.best = saved.get("best")
        self.evals_since_best = saved.get("evals_since_best", 0)
        self.stopped = saved.get("stopped", False)

    def update(self, metrics: Mapping[str, float]) -> None:
        if not self.metric or self.metric not in metrics:
            return
        value = metrics[self.metric]
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better:
            self.best, self.evals_since_best = value, 0
        else:
            self.evals_since_best += 1
            self.stopped = self.evals_since_best >= self.patience

    def as_dict(self) -> dict:
        return {"best": self.best, "evals_since_best": self.evals_since_best,
                "stopped": self.stopped}


def fit(model: nnx.Module, task: Task, train: ArrayDataset | Any, *,
        config: ConfigDict, eval_data: Mapping[str, ArrayDataset] | None = None,
        workdir: str | None = None, mesh: jax.sharding.Mesh | None = None,
        train_step: Callable | None = None,
        tx: optax.GradientTransformation | None = None) -> FitResult:
    """Train ``model`` on ``train`` and evaluate on ``eval_data``.

    Args:
      model: an ``nnx.Module`` (updated in place with the trained values).
      task: loss, metrics and how to call the model.
      train: an ``ArrayDataset`` or any source with ``steps_per_epoch``,
        ``device_arrays``, ``step_inputs`` and ``make_batch``.
      config: a config from ``jaxdl.config.default_config()`` (or extending it).
      eval_data: named splits evaluated every ``train.eval_every`` steps and at the end.
      workdir: where checkpoints and logs go; None trains in memory only.
      mesh: a device mesh; default from ``config.mesh``.
      train_step: a family's own pure step replacing ``make_train_step``'s.
      tx: the optimizer whose state ``TrainState.opt_state`` holds; default
        ``make_optimizer(config.optimizer, ...)``. A ``train_step`` that updates
        the parameters itself (word2vec's sparse SGD) passes ``optax.identity()``
        so that no unused optimizer state is stored or checkpointed.
    Returns:
      A ``FitResult``; ``metrics[split][name]`` are the final evaluations.
    """
    start_time = time.time()
    validate_core(config)
    tc = config.train
    if tc.get("compilation_cache_dir"):
        _enable_compilation_cache(tc.compilation_cache_dir)
    eval_data = dict(eval_data or {})
    check_data_fits_model(model, task, {"train": train, **eval_data})  # before compiling
    mesh = mesh or distributed.make_mesh(config.mesh.data, config.mesh.model)
    source = (ArrayTrainSource(train, tc.batch_size, seed=config.seed)
              if isinstance(train, ArrayDataset) else train)
    distributed.check_batch_divides(tc.batch_size, mesh, "config.train.batch_size")
    total = tc.num_steps or tc.num_epochs * source.steps_per_epoch

    graphdef_train, graphdef_eval, params, model_state = split_model(model)
    if tx is None:
        tx = make_optimizer(config.optimizer, params, total, frozen=config.transfer.frozen,
                            lr_multipliers=config.transfer.lr_multipliers)
    ema_decay = float(config.train.get("ema_decay", 0.0))
    state = create_train_state(params, model_state, tx, seed=config.seed, ema=ema_decay > 0)
    shardings = distributed.state_shardings(
        state, mesh, config.mesh.get("param_sharding", "replicated"))
    state = jax.device_put(state, shardings)

    checkpointer = meta = None
    if workdir:
        ck = config.checkpoint
        checkpointer = Checkpointer(workdir, max_to_keep=ck.max_to_keep,
                                    best_metric=ck.best_metric, best_mode=ck.best_mode,
                                    keep_best=ck.keep_best)
        restored = checkpointer.restore_latest(state)
        if restored is not None:
            state, meta = restored
    step = int(state.step)
    logger = MetricsLogger(workdir, resume_step=step if meta is not None else None,
                           enabled=jax.process_index() == 0)
    stopper = _EarlyStopping(tc.early_stopping_metric, tc.early_stopping_mode,
                             tc.early_stopping_patience, (meta or {}).get("early_stopping"))

    step_fn = train_step or step_lib.make_train_step(
        graphdef_train, task, tx, nan_policy=config.nan_policy, ema_decay=ema_decay,
        compute_dtype=tc.get("compute_dtype", "float32"),
        grad_accum_steps=tc.get("grad_accum_steps", 1))
    input_sharding = distributed.batch_sharding(mesh, batch_axis=1)
    loop_fn = step_lib.make_train_loop(
        step_fn, source.make_batch, out_shardings=(shardings, distributed.replicated(mesh)),
        in_shardings=(shardings, distributed.replicated(mesh), distributed.replicated(mesh),
                      input_sharding))
    arrays = source.device_arrays(distributed.replicated(mesh))
    eval_fn = step_lib.make_eval_step(graphdef_eval, task, gather_eval_batch,
                                      distributed.replicated(mesh),
                                      scan_batches=scan_policy.eval_batches_scannable())
    eval_arrays = {name: ds.device_arrays(distributed.replicated(mesh))
                   for name, ds in eval_data.items()}
    metrics_of = task.all_metrics()

    def evaluate(split: str, dataset: ArrayDataset, arrays_) -> dict[str, float]:
        # A set smaller than eval_batch_size is not padded up to it.
        batches = dataset.eval_batches(min(tc.eval_batch_size, len(dataset)))
        idx = np.stack([b[0] for b in batches])
        masks = np.stack([b[1] for b in batches])
        params_ = state.ema_params if state.ema_params is not None else state.params
        stats = eval_fn(params_, state.model_state, arrays_, idx, masks)
        return compute_metrics(metrics_of, stats)

    def run_evals(at_step: int) -> dict[str, float]:
        flat = {}
        for split, dataset in eval_data.items():
            values = evaluate(split, dataset, eval_arrays[split])
            logger.log(at_step, split, values)
            flat.update({f"{split}/{k}": v for k, v in values.items()})
        return flat

    def checkpoint_meta() -> dict:
        return {"early_stopping": stopper.as_dict(), "last_train": last_train}

    last_train: dict = (meta or {}).get("last_train", {})

    def read_accumulator(acc) -> None:
        nonlocal last_train
        host = jax.device_get(acc)
        if host.nonfinite and config.nan_policy == "raise":
            good = checkpointer.steps()[-1] if checkpointer and checkpointer.steps() else None
            raise NonFiniteError(
                "loss, gradients or updated state became NaN/Inf at step "
                f"{int(host.first_nonfinite_step)}; "
                f"last finite train metrics {last_train or 'none yet'}; last good checkpoint: "
                f"{'step ' + str(good) if good is not None else 'none'} (kept). Lower "
                "config.optimizer.lr, enable config.optimizer.grad_clip_norm, or set "
                "config.nan_policy='skip'.")
        if int(host.max_skip_run) >= config.max_consecutive_skips:
            raise NonFiniteError(
                f"{int(host.max_skip_run)} consecutive updates were skipped for NaN/Inf "
                f"(config.max_consecutive_skips={config.max_consecutive_skips}) by step {step}; "
                f"last finite train metrics {last_train or 'none yet'}")
        values = compute_metrics(metrics_of, host.metrics)
        if config.nan_policy == "skip":
            values["skipped_updates"] = float(host.nonfinite)
        if np.all(np.isfinite(list(values.values()))):
            last_train = values
        logger.log(step, "train", values)

    steps_per_loop = scan_policy.steps_per_dispatch(
        tc.steps_per_loop, step_fn, state, source.make_batch, arrays,
        source.step_inputs(step, 1)[0])
    acc = new_accumulator = None
    bar = progress_bar(total, step, tc.progress_bar and jax.process_index() == 0)
    try:
        while step < total and not stopper.stopped:
            boundary = _next_boundary(step, total, (tc.log_every, tc.eval_every,
                                                    config.checkpoint.every_steps))
            k = steps_per_loop if boundary - step >= steps_per_loop else 1
            inputs = distributed.put_step_inputs(source.step_inputs(step, k), input_sharding)
            if acc is None:
                if new_accumulator is None:
                    new_accumulator = step_lib.make_zero_stats(
                        step_fn, state, source.make_batch, arrays, inputs[0],
                        distributed.replicated(mesh))
                acc = new_accumulator()
            state, acc = loop_fn(state, acc, arrays, inputs)
            step += k
            bar.update(k)
            if step != boundary:
                continue
            if step % tc.log_every == 0 or step == total or (
                    config.checkpoint.every_steps and step % config.checkpoint.every_steps == 0):
                read_accumulator(acc)
                acc = None
            if tc.eval_every and step % tc.eval_every == 0 and eval_data:
                flat = run_evals(step)
                stopper.update(flat)
                if checkpointer:
                    checkpointer.save_best(step, state, checkpoint_meta(), flat)
            if checkpointer and config.checkpoint.every_steps and (
                    step % config.checkpoint.every_steps == 0):
                checkpointer.save(step, state, checkpoint_meta())
        if acc is not None:
            read_accumulator(acc)
        if checkpointer and step not in checkpointer.steps():
            checkpointer.save(step, state, checkpoint_meta())
    finally:
        bar.close()

    final: dict[str, dict[str, float]] = {}
    splits = dict(eval_data)
    if tc.eval_train and isinstance(train, ArrayDataset):
        splits = {"train": train, **splits}
    logged = {(e["step"], e["split"]) for e in logger.history}  # incl. before a resume
    for split, dataset in splits.items():
        arrays_ = eval_arrays.get(split) or dataset.device_arrays(distributed.replicated(mesh))
        final[split] = evaluate(split, dataset, arrays_)
        name = "train_eval" if split == "train" else split
        if (step, name) not in logged:  # the last periodic eval may be this very one
            logger.log(step, name, final[split])
    logger.close()
    if checkpointer:
        checkpointer.close()
    nnx.update(model, state.params, state.model_state)
    return FitResult(model=model, state=state, metrics=final, history=logger.history,
                     steps=step, params_sha256=params_sha256(state.params),
                     num_params=count_params(state.params),
                     wall_seconds=time.time() - start_time, stopped_early=stopper.stopped)
