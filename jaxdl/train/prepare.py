"""``prepare``: everything ``fit`` builds before its first step.

Validation, the mesh, the training source, the split model, the optimizer, the
placed ``TrainState``, and the jitted k-step loop and evaluation functions.
``fit`` adds the workdir (checkpoints, logs) and the loop over dispatches; a
benchmark that times ``fit``'s steps calls ``prepare`` and drives the same
``loop_fn`` itself, so it measures exactly what ``fit`` runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import optax
from flax import nnx
from ml_collections import ConfigDict

from jaxdl import distributed
from jaxdl.config_schema import validate_core
from jaxdl.data.arrays import ArrayDataset, gather_eval_batch
from jaxdl.data.sources import TrainSource, as_train_source
from jaxdl.data.streamed_split import StreamedSplit
from jaxdl.train.streamed_eval import streamed_eval_steps
from jaxdl.optim import make_optimizer
from jaxdl.ops import scan_policy
from jaxdl.train import step as step_lib
from jaxdl.train.compilation_cache import enable_compilation_cache
from jaxdl.train.settings_take_effect import check_settings_take_effect
from jaxdl.train.state import TrainState, create_train_state, split_model
from jaxdl.train.task import Task
from jaxdl.train.data_checks import check_data_fits_model


@dataclasses.dataclass
class Prepared:
    """What ``prepare`` builds; ``B`` is the global batch, ``k`` steps per dispatch.

    Attributes:
      mesh: the device mesh, axes ``('data', 'model')``.
      source: the training source (an ``ArrayDataset`` wrapped as ``ArrayTrainSource``).
      total_steps: ``config.train.num_steps`` or ``num_epochs * steps_per_epoch``.
      graphdef_eval: the model's graph in inference mode (for exporting, evaluating).
      tx: the optimizer whose state ``state.opt_state`` holds.
      state: the fresh ``TrainState`` placed with ``state_shardings`` (the first
        ``loop_fn`` call donates its buffers; ``fit`` drops it from here).
      state_shardings: how each leaf of ``state`` is laid out on ``mesh``.
      replicated: the replicated sharding of ``mesh``.
      input_sharding: how step inputs ``[k, B, ...]`` are laid out (``B`` over ``data``).
      step_fn: the pure ``train_step(state, batch) -> (state, stats)``.
      loop_fn: jitted ``(state, acc, arrays, inputs [k, B, ...]) -> (state, acc)``,
        state and accumulator donated.
      arrays: the source's device arrays.
      eval_fn: jitted ``(params, model_state, arrays, idx [n, b], masks [n, b]) -> stats``.
      eval_data: split name -> ``ArrayDataset`` or ``StreamedSplit`` evaluated during
        and after training.
      eval_arrays: split name -> its device arrays (in-memory splits only).
      ema_decay: ``config.train.ema_decay`` (0: no EMA of the parameters).
      streamed_eval_fn: for ``StreamedSplit``s, ``sharding -> eval step`` taking one
        placed batch ``[b, ...]`` (``streamed_eval_steps``); None without one.
    """

    mesh: jax.sharding.Mesh
    source: TrainSource
    total_steps: int
    graphdef_eval: nnx.GraphDef
    tx: optax.GradientTransformation
    state: TrainState
    state_shardings: Any
    replicated: jax.sharding.Sharding
    input_sharding: jax.sharding.Sharding
    step_fn: Callable
    loop_fn: Callable
    arrays: Any
    eval_fn: Callable
    eval_data: dict[str, ArrayDataset | StreamedSplit]
    eval_arrays: dict[str, Any]
    ema_decay: float
    streamed_eval_fn: Callable | None = None

    def zero_stats(self, state: TrainState, step_input: Any) -> Callable[[], step_lib.LoopStats]:
        """A factory of empty accumulators for ``loop_fn``, placed replicated.

        Args:
          state: a state of this run (only shapes and dtypes are read).
          step_input: one row ``[B, ...]`` of ``source.step_inputs`` (likewise).
        """
        return step_lib.make_zero_stats(self.step_fn, state, self.source.make_batch,
                                        self.arrays, step_input, self.replicated)


def prepare(model: nnx.Module, task: Task, train: ArrayDataset | TrainSource, *,
            config: ConfigDict,
            eval_data: Mapping[str, ArrayDataset | StreamedSplit] | None = None,
            mesh: jax.sharding.Mesh | None = None, train_step: Callable | None = None,
            tx: optax.GradientTransformation | None = None) -> Prepared:
    """Check the inputs and build ``fit``'s state and step functions (nothing runs yet).

    Args:
      model, task, train, config, eval_data, mesh, train_step, tx: as ``fit``.
    Returns:
      A ``Prepared``.
    Raises:
      ConfigError, DataError: bad config or data, before anything is compiled.
    """
    validate_core(config)
    tc = config.train
    if tc.get("compilation_cache_dir"):
        enable_compilation_cache(tc.compilation_cache_dir)
    eval_data = dict(eval_data or {})
    check_data_fits_model(model, task, {"train": train, **eval_data})  # before compiling
    mesh = mesh or distributed.make_mesh(config.mesh.data, config.mesh.model)
    source = as_train_source(train, batch_size=tc.batch_size, seed=config.seed)
    distributed.check_batch_divides(tc.batch_size, mesh, "config.train.batch_size")
    total = tc.num_steps or tc.num_epochs * source.steps_per_epoch

    graphdef_train, graphdef_eval, params, model_state = split_model(model)
    check_settings_take_effect(config, params, eval_data, task.all_metrics())
    if tx is None:
        tx = make_optimizer(config.optimizer, params, total, frozen=config.transfer.frozen,
                            lr_multipliers=config.transfer.lr_multipliers)
    ema_decay = float(tc.get("ema_decay", 0.0))
    state = create_train_state(params, model_state, tx, seed=config.seed, ema=ema_decay > 0)
    shardings = distributed.state_shardings(
        state, mesh, config.mesh.get("param_sharding", "replicated"))
    state = jax.device_put(state, shardings)

    step_fn = train_step or step_lib.make_train_step(
        graphdef_train, task, tx, nan_policy=config.nan_policy, ema_decay=ema_decay,
        compute_dtype=tc.get("compute_dtype", "float32"),
        grad_accum_steps=tc.get("grad_accum_steps", 1))
    replicated = distributed.replicated(mesh)
    input_sharding = distributed.batch_sharding(mesh, batch_axis=1)
    loop_fn = step_lib.make_train_loop(
        step_fn, source.make_batch, out_shardings=(shardings, replicated),
        in_shardings=(shardings, replicated, replicated, input_sharding))
    arrays = source.device_arrays(replicated)
    eval_fn = step_lib.make_eval_step(graphdef_eval, task, gather_eval_batch, replicated,
                                      scan_batches=scan_policy.eval_batches_scannable())
    eval_arrays = {name: ds.device_arrays(replicated) for name, ds in eval_data.items()
                   if not isinstance(ds, StreamedSplit)}
    streamed_eval_fn = (streamed_eval_steps(graphdef_eval, task)
                        if len(eval_arrays) < len(eval_data) else None)
    return Prepared(mesh=mesh, source=source, total_steps=total, graphdef_eval=graphdef_eval,
                    tx=tx, state=state, state_shardings=shardings, replicated=replicated,
                    input_sharding=input_sharding, step_fn=step_fn, loop_fn=loop_fn,
                    arrays=arrays, eval_fn=eval_fn, eval_data=eval_data,
                    eval_arrays=eval_arrays, ema_decay=ema_decay,
                    streamed_eval_fn=streamed_eval_fn)
