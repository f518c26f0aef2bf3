"""Pure train and eval steps over ``TrainState`` pytrees.

``make_train_step`` returns ``train_step(state, batch) -> (state, stats)``;
``make_train_loop`` wraps it into one jitted dispatch that gathers ``k`` batches
on the device from their indices and runs them under ``lax.scan``, summing the
metric statistics without any host synchronisation. Each function is traced once
per distinct shape; ``TRACE_COUNTS`` records how often, so tests can prove that a
whole ``fit`` compiles the step once.
"""

from __future__ import annotations

import collections
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxdl import precision
from jaxdl.errors import ConfigError
from jaxdl.metrics import add_stats, batch_stats
from jaxdl.ops.threefry_unrolled import unrolled_threefry
from jaxdl.train.state import TrainState
from jaxdl.train.task import Task

TRACE_COUNTS: collections.Counter = collections.Counter()

StepFn = Callable[[TrainState, dict], tuple[TrainState, dict]]


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def split_micro_batches(batch: dict, num_micro: int) -> dict:
    """Split every ``[B, ...]`` leaf into ``[num_micro, B // num_micro, ...]``.

    Micro-batch ``i`` takes examples ``i, i + n, i + 2n, …`` (a strided split), so
    when ``B`` is sharded over the mesh's ``data`` axis every micro-batch is still
    spread evenly over the devices (no data moves between them).

    Raises:
      ConfigError: when ``B`` is not a multiple of ``num_micro``.
    """
    def split(x):
        if x.shape[0] % num_micro:
            raise ConfigError(f"config.train.grad_accum_steps={num_micro} does not divide the "
                              f"batch of {x.shape[0]} examples; expected batch_size to be a "
                              f"multiple of {num_micro}")
        x = x.reshape((x.shape[0] // num_micro, num_micro) + x.shape[1:])
        return jnp.swapaxes(x, 0, 1)

    return jax.tree.map(split, batch)


def make_train_step(graphdef: nnx.GraphDef, task: Task, tx: optax.GradientTransformation,
                    *, nan_policy: str = "none", ema_decay: float = 0.0,
                    compute_dtype: str = "float32", grad_accum_steps: int = 1) -> StepFn:
    """A pure ``train_step(state, batch) -> (state, stats)``.

    Args:
      graphdef: the model's training-mode graph definition.
      task: loss, metrics and how to call the model.
      tx: the optimizer.
      nan_policy: ``"skip"`` keeps the old state when the loss, a gradient, or
        the updated parameters, optimizer state or model state are not finite,
        and counts it in ``state.skipped``; ``"raise"`` applies the update and
        the loop checks the returned ``finite`` flag (same test); ``"none"``
        tests the loss only.
      ema_decay: if > 0, also update ``state.ema_params``.
      compute_dtype: ``"bfloat16"`` runs the forward and backward pass on bf16
        copies of the parameters and floating inputs; gradients, updates and the
        stored parameters stay float32 (see ``jaxdl.precision``).
      grad_accum_steps: split each batch into this many micro-batches, run them
        one after another and apply one update with their gradients averaged
        (weighted by each micro-batch's loss weight, so it equals the big-batch
        gradient of a masked-mean loss).
    Returns:
      The step; ``stats`` is ``{"metrics": per-metric sums, "finite": bool}``.
    """
    metrics = task.all_metrics()
    dtype = precision.compute_dtype(compute_dtype)
    if not isinstance(grad_accum_steps, int) or grad_accum_steps < 1:
        raise ConfigError(f"config.train.grad_accum_steps={grad_accum_steps!r}; expected a "
                          "positive integer")

    def micro_step(params, model_state, batch, dropout_key):
        """Gradient of one (micro-)batch: ``(loss, grads, model_state, stats, weight)``."""
        weights = task.weights(batch)
        target = batch[task.target]

        def loss_fn(params):
            inputs = batch
            if dtype != jnp.float32:  # the cast is inside, so grads come back float32
                params = precision.cast_floating(params, dtype)
                inputs = {k: v if k == task.target else precision.cast_floating(v, dtype)
                          for k, v in batch.items()}
            model = nnx.merge(graphdef, params, model_state)
            pred = task.predict(model, inputs, nnx.Rngs(dropout=dropout_key))
            pred = precision.cast_floating(pred, jnp.float32)
            new_model_state = nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.Param)))
            # Running statistics keep their stored dtype whatever the compute dtype.
            new_model_state = jax.tree.map(lambda n, o: n.astype(o.dtype),
                                           new_model_state, model_state)
            return task.loss(pred, target, weights), (pred, new_model_state)

        (loss, (pred, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        stats = batch_stats(metrics, pred, target, weights)
        return loss, grads, model_state, stats, jnp.sum(weights).astype(jnp.float32)

    def accumulated_step(params, model_state, batch, dropout_key):
        """``micro_step`` over ``grad_accum_steps`` micro-batches, gradients averaged."""
        micro = split_micro_batches(batch, grad_accum_steps)
        first = jax.tree.map(lambda x: x[0], micro)
        loss, grads, model_state, stats, weight = micro_step(params, model_state, first,
                                                             jax.random.fold_in(dropout_key, 0))
        carry = (jnp.isfinite(loss), jax.tree.map(lambda g: g * weight, grads),
                 model_state, stats, weight)

        def body(carry, xs):
            finite, grad_sum, model_state, stats_sum, weight_sum = carry
            index, micro_batch = xs
            loss, grads, model_state, stats, weight = micro_step(
                params, model_state, micro_batch, jax.random.fold_in(dropout_key, index))
            grad_sum = jax.tree.map(lambda s, g: s + g * weight, grad_sum, grads)
            return (finite & jnp.isfinite(loss), grad_sum, model_state,
                    add_stats(stats_sum, stats), weight_sum + weight), None

        rest = jax.tree.map(lambda x: x[1:], micro)
        indices = jnp.arange(1, grad_accum_steps)
        (finite, grad_sum, model_state, stats, weight_sum), _ = jax.lax.scan(
            body, carry, (indices, rest))
        grads = jax.tree.map(lambda g: g / jnp.maximum(weight_sum, 1e-12), grad_sum)
        loss = jnp.where(finite, 0.0, jnp.nan)  # only its finiteness is used below
        return loss, grads, model_state, stats, weight_sum

    def train_step(state: TrainState, batch: dict):
        step_key = jax.random.fold_in(state.rng, state.step)
        dropout_key, preprocess_key = jax.random.split(step_key)
        if task.preprocess is not None:
            batch = task.preprocess(batch, preprocess_key)
        compute = micro_step if grad_accum_steps == 1 else accumulated_step
        loss, grads, model_state, stats, _ = compute(state.params, state.model_state,
                                                     batch, dropout_key)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        finite = jnp.isfinite(loss)
        if nan_policy != "none":
            # The update itself can make a NaN from finite gradients (a NaN learning
            # rate, an overflow), so the new state is checked too: a non-finite
            # state is then never kept ("skip") nor saved as good ("raise"). Each
            # leaf costs a reduction, so only the policies that act on it pay.
            finite = (finite & _all_finite(grads) & _all_finite(params)
                      & _all_finite(opt_state) & _all_finite(model_state))
        if nan_policy == "skip":
            keep = lambda new, old: jax.tree.map(  # noqa: E731
                lambda n, o: jnp.where(finite, n, o), new, old)
            params = keep(params, state.params)
            opt_state = keep(opt_state, state.opt_state)
            model_state = keep(model_state, state.model_state)
        ema = state.ema_params
        if ema is not None and ema_decay > 0:
            ema = jax.tree.map(lambda e, p: ema_decay * e + (1 - ema_decay) * p, ema, params)
        new_state = state.replace(
            step=state.step + 1, params=params, model_state=model_state,
            opt_state=opt_state, ema_params=ema,
            skipped=jnp.where(finite, 0, state.skipped + 1).astype(jnp.int32))
        return new_state, {"metrics": stats, "finite": finite}

    return train_step


class LoopStats(NamedTuple):
    """What the device accumulates between two host reads.

    Attributes:
      metrics: summed metric statistics of the steps run.
      nonfinite: number of steps whose loss, gradients or new state were NaN/Inf.
      first_nonfinite_step: the first such step (``NO_STEP`` if none).
      max_skip_run: the longest run of consecutive skipped updates seen.
    """

    metrics: dict
    nonfinite: jax.Array
    first_nonfinite_step: jax.Array
    max_skip_run: jax.Array


NO_STEP = 2**31 - 1


def make_train_loop(train_step: StepFn, make_batch: Callable, *, donate: bool = True,
                    out_shardings: Any = None, in_shardings: Any = None):
    """One jitted dispatch of ``k`` steps: ``(state, acc, arrays, inputs) -> (state, acc)``.

    Its calls and ``.lower`` lower jax's threefry unrolled (``ops.threefry_unrolled``).

    Args:
      train_step: from ``make_train_step`` (or a family's own, same signature).
      make_batch: ``make_batch(arrays, step_input) -> batch``, pure (gathers on device).
      donate: donate the state and accumulator buffers (updated in place).
      out_shardings: ``(state_shardings, acc_sharding)`` pinning the outputs' layout
        (e.g. FSDP-sharded parameters stay sharded across dispatches); None lets
        XLA choose.
      in_shardings: ``(state, acc, arrays, inputs)`` shardings; with them the step
        inputs can be passed as a numpy array and jit places it itself (cheaper
        than a separate ``jax.device_put`` per dispatch; benchmarks/RESULTS.md).
    The leading axis of ``inputs`` is ``k``; ``acc`` is a ``LoopStats``.
    """

    def run(state, acc, arrays, inputs):
        TRACE_COUNTS["train_loop"] += 1

        def body(carry, step_input):
            state, acc = carry
            step = state.step
            state, stats = train_step(state, make_batch(arrays, step_input))
            bad = ~stats["finite"]
            acc = LoopStats(
                metrics=add_stats(acc.metrics, stats["metrics"]),
                nonfinite=acc.nonfinite + bad.astype(jnp.int32),
                first_nonfinite_step=jnp.where(
                    bad, jnp.minimum(acc.first_nonfinite_step, step), acc.first_nonfinite_step),
                max_skip_run=jnp.maximum(acc.max_skip_run, state.skipped))
            return (state, acc), None

        if inputs.shape[0] == 1:
            # One step needs no loop, and some operations run slower inside one
            # (``jaxdl.ops.scan_policy``), so it is traced at the top level.
            (state, acc), _ = body((state, acc), inputs[0])
        else:
            (state, acc), _ = jax.lax.scan(body, (state, acc), inputs)
        return state, acc

    options = {"donate_argnums": (0, 1) if donate else ()}
    if out_shardings is not None:
        options["out_shardings"] = out_shardings
    if in_shardings is not None:
        options["in_shardings"] = in_shardings
    # Unrolled threefry: jax.random draws in the loop (batch assembly, dropout) with
    # no inner while loops, the same bits (jaxdl.ops.threefry_unrolled).
    return unrolled_threefry(jax.jit(run, **options))


def make_zero_stats(train_step: StepFn, state: TrainState, make_batch: Callable, arrays,
                    step_input, sharding) -> Callable[[], LoopStats]:
    """A factory of empty accumulators shaped like one step's statistics.

    The step is traced abstractly once (nothing runs); each call then runs one
    small jitted computation that makes the zeros on the device with ``sharding``,
    so the loop's input layout never changes (no retrace). A jitted call is
    cheaper than ``jax.device_put`` of the same numpy zeros, paid after every
    metrics read (benchmarks/RESULTS.md).
    """
    batch = jax.eval_shape(make_batch, arrays, step_input)
    _, stats = jax.eval_shape(train_step, state, batch)
    shapes = LoopStats(stats["metrics"], jax.ShapeDtypeStruct((), jnp.int32),
                       jax.ShapeDtypeStruct((), jnp.int32), jax.ShapeDtypeStruct((), jnp.int32))

    @functools.partial(jax.jit, out_shardings=sharding)
    def zeros() -> LoopStats:
        acc = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        return acc._replace(first_nonfinite_step=jnp.full((), NO_STEP, jnp.int32))

    return zeros


def make_eval_step(graphdef: nnx.GraphDef, task: Task, gather: Callable,
                   sharding: jax.sharding.Sharding | None = None, *,
                   scan_batches: bool = False):
    """``evaluate(params, model_state, arrays, indices, masks) -> stats``.

    ``indices``/``masks`` are numpy ``[num_batches, B]``, placed with ``sharding``
    (a multi-process jit only takes global arrays). With ``scan_batches`` all
    batches run in one dispatch under ``lax.scan``; without, one jitted dispatch
    per batch (``fit`` asks ``jaxdl.ops.scan_policy`` which pays). Either way the
    statistics are summed on the device and nothing is read back until the
    caller asks.
    """
    metrics = task.all_metrics()

    def eval_batch(params, model_state, arrays, indices, mask):
        TRACE_COUNTS["eval"] += 1
        model = nnx.merge(graphdef, params, model_state)
        batch = gather(arrays, indices, mask)
        pred = task.predict(model, batch, None)
        return batch_stats(metrics, pred, batch[task.target], task.weights(batch))

    def scanned(params, model_state, arrays, indices, masks):
        def body(acc, im):
            return add_stats(acc, eval_batch(params, model_state, arrays, *im)), None

        first = eval_batch(params, model_state, arrays, indices[0], masks[0])
        acc, _ = jax.lax.scan(body, first, (indices[1:], masks[1:]))
        return acc

    if scan_batches:
        scanned_jit = jax.jit(scanned)
        return lambda params, model_state, arrays, indices, masks: scanned_jit(
            params, model_state, arrays, *jax.device_put((indices, masks), sharding))
    one_batch = jax.jit(eval_batch)
    add = jax.jit(add_stats)

    def per_batch(params, model_state, arrays, indices, masks):
        acc = None
        for idx, mask in zip(indices, masks):
            idx, mask = jax.device_put((idx, mask), sharding)
            stats = one_batch(params, model_state, arrays, idx, mask)
            acc = stats if acc is None else add(acc, stats)
        return acc

    return per_batch
