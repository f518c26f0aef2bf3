"""``fit``: the one training loop every supervised family goes through.

The host only schedules: it computes each dispatch's batch indices (a pure
function of seed and step), launches the jitted k-step loop, and reads metrics
back at log, eval and checkpoint boundaries. Re-running with the same workdir
resumes from the newest readable checkpoint and ends bit-identical to an
uninterrupted run. The set-up before the first step (state, sharding, jitted
steps) is ``jaxdl.train.prepare.prepare``; ``config.train.profile_steps`` traces
chosen steps (``jaxdl.train.profile``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from ml_collections import ConfigDict

from jaxdl import distributed
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.sources import TrainSource
from jaxdl.data.streamed_split import StreamedSplit
from jaxdl.errors import NonFiniteError
from jaxdl.interruption import raise_if_requested
from jaxdl.metrics import compute_metrics
from jaxdl.ops import scan_policy
from jaxdl.train.checkpoint import Checkpointer
from jaxdl.train.logging import MetricsLogger, ProgressLines, progress_bar
from jaxdl.train.prepare import prepare
from jaxdl.train.profile import StepProfiler
from jaxdl.train.state import TrainState, count_params, params_sha256
from jaxdl.train.task import Task
from jaxdl.workdir import discard_unstarted, is_prepared, prepare_workdir, start_writing


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


def _next_boundary(step: int, total: int, intervals, points=()) -> int:
    """The first step after ``step`` that is a multiple of an interval or one of ``points``."""
    nxt = total
    for every in intervals:
        if every:
            nxt = min(nxt, (step // every + 1) * every)
    for point in points:
        if point > step:
            nxt = min(nxt, point)
    return nxt


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


@jax.jit
def _state_is_finite(state: TrainState) -> jax.Array:
    """Whether every float leaf of the parameters, optimizer and model state is finite."""
    leaves = [x for x in jax.tree.leaves((state.params, state.opt_state, state.model_state,
                                          state.ema_params))
              if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else True


def fit(model: nnx.Module, task: Task, train: ArrayDataset | TrainSource, *,
        config: ConfigDict,
        eval_data: Mapping[str, ArrayDataset | StreamedSplit] | None = None,
        workdir: str | None = None, mesh: jax.sharding.Mesh | None = None,
        train_step: Callable | None = None,
        tx: optax.GradientTransformation | None = None) -> FitResult:
    """Train ``model`` on ``train`` and evaluate on ``eval_data``.

    Args:
      model: an ``nnx.Module`` (updated in place with the trained values).
      task: loss, metrics and how to call the model.
      train: an ``ArrayDataset`` or any ``jaxdl.data.sources.TrainSource``.
      config: a config from ``jaxdl.config.default_config()`` (or extending it).
      eval_data: named splits evaluated every ``train.eval_every`` steps and at the end:
        ``ArrayDataset``s (on the device) or ``StreamedSplit``s (read batch by batch).
      workdir: where checkpoints and logs go; None trains in memory only. A workdir
        holding a run with another config is refused as on the command line
        (``jaxdl.workdir.prepare_workdir``); nothing is written there before every
        check has passed.
      mesh: a device mesh; default from ``config.mesh``.
      train_step: a family's own pure step replacing ``make_train_step``'s.
      tx: the optimizer whose state ``TrainState.opt_state`` holds; default
        ``make_optimizer(config.optimizer, ...)``. A ``train_step`` that updates
        the parameters itself (word2vec's sparse SGD) passes ``optax.identity()``
        so that no unused optimizer state is stored or checkpointed.
    Returns:
      A ``FitResult``; ``metrics[split][name]`` are the final evaluations.
    Raises:
      ConfigError, DataError, CheckpointError: bad settings or data, or a workdir of
        another run, before anything is written.
      NonFiniteError: NaN/Inf under ``nan_policy='raise'``, or a NaN/Inf state due
        to be checkpointed (never saved, whatever the policy).
      WriteError: ``metrics.jsonl``, the TensorBoard events, ``config.json`` or the
        history cannot be written (a checkpoint: CheckpointError).
    """
    start_time = time.time()
    # The workdir is checked against this config exactly as on the command line,
    # unless the caller (jaxdl.run, a composed experiment) has checked it already.
    checked_here = bool(workdir) and not is_prepared(workdir)
    if checked_here:
        prepare_workdir(workdir, config)
    try:
        prepared = prepare(model, task, train, config=config, eval_data=eval_data, mesh=mesh,
                           train_step=train_step, tx=tx)
        profiler = StepProfiler(config.train.get("profile_steps", ()), workdir,
                                total_steps=prepared.total_steps)
    except BaseException:
        if checked_here:  # nothing was written: drop the start and the directory it made
            discard_unstarted(workdir)
        raise
    # Every check has passed: from here on the run writes.
    tc = config.train
    source, total = prepared.source, prepared.total_steps
    # fit owns the state from here: each dispatch donates it, a restore replaces it.
    state, prepared.state = prepared.state, None
    step_fn, loop_fn, arrays = prepared.step_fn, prepared.loop_fn, prepared.arrays
    eval_fn, eval_data, eval_arrays = prepared.eval_fn, prepared.eval_data, prepared.eval_arrays
    mesh, input_sharding = prepared.mesh, prepared.input_sharding

    checkpointer = meta = None
    if workdir:
        ck = config.checkpoint
        checkpointer = Checkpointer(workdir, max_to_keep=ck.max_to_keep,
                                    best_metric=ck.best_metric, best_mode=ck.best_mode,
                                    keep_best=ck.keep_best)
        restored = checkpointer.restore_latest(state)
        if restored is not None:
            state, meta = restored
        checkpointer.forget_best_after(int(state.step))
        start_writing(workdir, start_step=int(state.step))
    step = int(state.step)
    logger = MetricsLogger(workdir, resume_step=step if meta is not None else None,
                           enabled=jax.process_index() == 0)
    stopper = _EarlyStopping(tc.early_stopping_metric, tc.early_stopping_mode,
                             tc.early_stopping_patience, (meta or {}).get("early_stopping"))
    metrics_of = task.all_metrics()

    def evaluate(split: str, dataset: ArrayDataset | StreamedSplit, arrays_) -> dict[str, float]:
        # A set smaller than eval_batch_size is not padded up to it.
        batch_size = min(tc.eval_batch_size, len(dataset))
        params_ = state.ema_params if state.ema_params is not None else state.params
        if isinstance(dataset, StreamedSplit):
            stats = dataset.stats(prepared.streamed_eval_fn, params_, state.model_state,
                                  batch_size, mesh)
            return compute_metrics(metrics_of, stats)
        batches = dataset.eval_batches(batch_size)
        idx = np.stack([b[0] for b in batches])
        masks = np.stack([b[1] for b in batches])
        stats = eval_fn(params_, state.model_state, arrays_, idx, masks)
        return compute_metrics(metrics_of, stats)

    def run_evals(at_step: int) -> dict[str, float]:
        flat = {}
        for split, dataset in eval_data.items():
            values = evaluate(split, dataset, eval_arrays.get(split))
            logger.log(at_step, split, values)
            report.evaluated(at_step, split, values)
            flat.update({f"{split}/{k}": v for k, v in values.items()})
        return flat

    def checkpoint_meta() -> dict:
        return {"early_stopping": stopper.as_dict(), "last_train": last_train}

    def last_good_checkpoint() -> str:
        good = checkpointer.steps()[-1] if checkpointer and checkpointer.steps() else None
        return f"step {good} (kept)" if good is not None else "none"

    def check_savable() -> None:
        # Only at checkpoints (a host sync anyway): a NaN/Inf state is never saved,
        # whatever nan_policy; 'raise' usually stops earlier, at the exact step.
        if bool(_state_is_finite(state)):
            return
        raise NonFiniteError(
            f"the parameters or optimizer state are NaN/Inf at step {step} "
            f"(config.nan_policy={config.nan_policy!r}), so checkpoint {step} is not "
            f"written; last finite train metrics {last_train or 'none yet'}; last good "
            f"checkpoint: {last_good_checkpoint()}. Lower config.optimizer.lr, enable "
            "config.optimizer.grad_clip_norm, or set config.nan_policy='skip'.")

    last_train: dict = (meta or {}).get("last_train", {})

    def read_accumulator(acc) -> None:
        nonlocal last_train
        host = jax.device_get(acc)
        if host.nonfinite and config.nan_policy == "raise":
            raise NonFiniteError(
                "loss, gradients or updated state became NaN/Inf at step "
                f"{int(host.first_nonfinite_step)}; "
                f"last finite train metrics {last_train or 'none yet'}; last good checkpoint: "
                f"{last_good_checkpoint()}. Lower "
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
        report.train(step, values)

    steps_per_loop = scan_policy.steps_per_dispatch(
        tc.steps_per_loop, step_fn, state, source.make_batch, arrays,
        source.step_inputs(step, 1)[0])
    acc = new_accumulator = None
    bar = progress_bar(total, step, tc.progress_bar and jax.process_index() == 0)
    report = ProgressLines(total, source.steps_per_epoch, bar=bar,
                           enabled=tc.progress_bar and jax.process_index() == 0)
    report.model_summary(type(model).__name__, state.params)
    if step < total and not stopper.stopped:
        report.compiling(step)
    try:
        while step < total and not stopper.stopped:
            boundary = _next_boundary(step, total, (tc.log_every, tc.eval_every,
                                                    config.checkpoint.every_steps),
                                      profiler.boundaries)
            k = steps_per_loop if boundary - step >= steps_per_loop else 1
            inputs = distributed.put_step_inputs(source.step_inputs(step, k), input_sharding)
            if acc is None:
                if new_accumulator is None:
                    new_accumulator = prepared.zero_stats(state, inputs[0])
                acc = new_accumulator()
            profiler.before_dispatch(step)
            first_dispatch = report.compiling_since is not None
            state, acc = loop_fn(state, acc, arrays, inputs)
            step += k
            if first_dispatch:
                report.compiled(step)
            profiler.after_dispatch(step, state)
            bar.update(k)
            raise_if_requested()  # Ctrl-C under jaxdl.run: stop between dispatches
            if step != boundary:
                continue
            if step % tc.log_every == 0 or step == total or (
                    config.checkpoint.every_steps and step % config.checkpoint.every_steps == 0):
                read_accumulator(acc)
                acc = None
            if tc.eval_every and step % tc.eval_every == 0 and eval_data:
                flat = run_evals(step)
                stopper.update(flat)
                if checkpointer and checkpointer.best is not None:
                    check_savable()
                    checkpointer.save_best(step, state, checkpoint_meta(), flat)
            if checkpointer and config.checkpoint.every_steps and (
                    step % config.checkpoint.every_steps == 0):
                check_savable()
                checkpointer.save(step, state, checkpoint_meta())
            report.flush()
        if acc is not None:
            read_accumulator(acc)
        report.flush()
        if checkpointer and step not in checkpointer.steps():
            check_savable()
            checkpointer.save(step, state, checkpoint_meta())
    finally:
        profiler.close()
        bar.close()

    final: dict[str, dict[str, float]] = {}
    splits = dict(eval_data)
    if tc.eval_train and isinstance(train, ArrayDataset):
        splits = {"train": train, **splits}
    logged = {(e["step"], e["split"]) for e in logger.history}  # incl. before a resume
    if splits:
        report.evaluating(list(splits))
    for split, dataset in splits.items():
        arrays_ = eval_arrays.get(split)
        if arrays_ is None and not isinstance(dataset, StreamedSplit):
            arrays_ = dataset.device_arrays(distributed.replicated(mesh))
        final[split] = evaluate(split, dataset, arrays_)
        name = "train_eval" if split == "train" else split
        report.evaluated(step, name, final[split])
        if (step, name) not in logged:  # the last periodic eval may be this very one
            logger.log(step, name, final[split])
    report.flush()
    logger.close()
    if checkpointer:
        checkpointer.close()
    nnx.update(model, state.params, state.model_state)
    return FitResult(model=model, state=state, metrics=final, history=logger.history,
                     steps=step, params_sha256=params_sha256(state.params),
                     num_params=count_params(state.params),
                     wall_seconds=time.time() - start_time, stopped_early=stopper.stopped)
