"""The three benchmark workloads and two ways of stepping them.

Workloads (synthetic data, shapes of the real experiments):
  mlp   784 → 256 → 256 → 10 on MNIST-shaped vectors, batch 128, Adam 1e-3.
  cnn   the PyTorch tutorial CNN on 32×32×3 images, batch 64, SGD 1e-3 momentum 0.9.
  lstm  a one-layer LSTM tagger (vocab 5000, embed 64, hidden 128, 17 tags) on
        length-32 sentences, batch 32, Adam 1e-3.

``FitPath`` runs steps exactly the way ``jaxdl.train.loop.fit`` does (the set-up
of ``jaxdl.train.prepare.prepare``, which ``fit`` calls too: its step, its k-step
loop; host-side batch indices placed per dispatch, metrics read back every
``log_every`` steps); ``HandWritten`` is the plain ``jax.jit`` train step a
JAX user would write for the same model (indices in, gather on the device,
donated state). Both report seconds for ``n`` steps with compilation excluded.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxdl import distributed
from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.train import task as task_lib
from jaxdl.train.prepare import prepare


@dataclasses.dataclass
class Workload:
    """A model, its data and its optimizer, shared by jaxdl, hand-written JAX and torch."""

    name: str
    make_model: Callable[[], nnx.Module]
    task: task_lib.Task
    arrays: dict[str, np.ndarray]
    batch_size: int
    optimizer: str  # "adam" or "momentum"
    lr: float
    hand_loss: Callable  # hand_loss(model, batch) -> scalar, plain JAX

    def config(self, steps_per_loop: int = 1):
        c = default_config()
        c.optimizer.name = self.optimizer
        c.optimizer.lr = self.lr
        c.train.batch_size = self.batch_size
        c.train.steps_per_loop = steps_per_loop
        return c

    def optax_tx(self) -> optax.GradientTransformation:
        if self.optimizer == "adam":
            return optax.adam(self.lr)
        return optax.sgd(self.lr, momentum=0.9)


def _ce(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def mlp_workload(num_examples: int = 8192) -> Workload:
    from jaxdl.models.mlp import MLP
    rng = np.random.default_rng(0)
    arrays = {"x": rng.normal(size=(num_examples, 784)).astype(np.float32),
              "y": rng.integers(0, 10, num_examples).astype(np.int32)}
    return Workload("mlp", lambda: MLP(784, (256, 256), 10, rngs=nnx.Rngs(0)),
                    task_lib.classification(), arrays, 128, "adam", 1e-3,
                    lambda model, b: _ce(model(b["x"]), b["y"]))


def cnn_workload(num_examples: int = 4096) -> Workload:
    from jaxdl.models.cnn import TutorialCNN  # imported lazily: the vision family's file
    rng = np.random.default_rng(0)
    arrays = {"x": rng.normal(size=(num_examples, 32, 32, 3)).astype(np.float32),
              "y": rng.integers(0, 10, num_examples).astype(np.int32)}
    return Workload("cnn", lambda: TutorialCNN(10, 3, rngs=nnx.Rngs(0)),
                    task_lib.classification(), arrays, 64, "momentum", 1e-3,
                    lambda model, b: _ce(model(b["x"]), b["y"]))


LSTM_SHAPE = dict(vocab=5000, embed=64, hidden=128, tags=17, length=32)


def lstm_workload(num_examples: int = 2048) -> Workload:
    from jaxdl.models.sequence import LSTMTagger
    from jaxdl.train.task import tagging_task
    s = LSTM_SHAPE
    rng = np.random.default_rng(0)
    lengths = rng.integers(s["length"] // 2, s["length"] + 1, num_examples)
    token_mask = (np.arange(s["length"])[None, :] < lengths[:, None]).astype(np.float32)
    arrays = {"tokens": (rng.integers(2, s["vocab"], (num_examples, s["length"]))
                         * token_mask).astype(np.int32),
              "token_mask": token_mask, "target_mask": token_mask,
              "y": rng.integers(0, s["tags"], (num_examples, s["length"])).astype(np.int32)}

    def hand_loss(model, b):
        logits = model({"tokens": b["tokens"], "mask": b["token_mask"]})
        per_token = optax.softmax_cross_entropy_with_integer_labels(logits, b["y"])
        return jnp.sum(per_token * b["target_mask"]) / jnp.sum(b["target_mask"])

    return Workload("lstm", lambda: LSTMTagger(s["vocab"], s["tags"], s["embed"], s["hidden"],
                                               bidirectional=False, rngs=nnx.Rngs(0)),
                    tagging_task(), arrays, 32, "adam", 1e-3, hand_loss)


WORKLOADS = {"mlp": mlp_workload, "cnn": cnn_workload, "lstm": lstm_workload}


class FitPath:
    """Steps driven exactly as ``fit`` drives them (see the module docstring).

    Args:
      workload: what to train.
      steps_per_loop: ``config.train.steps_per_loop`` (k steps per dispatch).
      mesh: the device mesh (default 1×1); the batch is sharded over ``data``.
      log_every: how often the metric accumulator is read back to the host.
    """

    def __init__(self, workload: Workload, *, steps_per_loop: int = 1, mesh=None,
                 log_every: int = 50, batch_size: int | None = None):
        self.k, self.log_every = steps_per_loop, log_every
        config = workload.config(steps_per_loop)
        config.train.batch_size = batch_size or workload.batch_size
        prepared = prepare(workload.make_model(), workload.task,
                           ArrayDataset(workload.arrays, name="train"), config=config,
                           mesh=mesh or distributed.make_mesh(1, 1))
        self.state, self.source, self.arrays = prepared.state, prepared.source, prepared.arrays
        self.step_fn, self.loop = prepared.step_fn, prepared.loop_fn
        self.zeros = prepared.zero_stats(self.state, self.source.step_inputs(0, 1)[0])
        self.input_sharding = prepared.input_sharding
        self.step = 0
        self.host_seconds = 0.0  # time spent computing and placing step inputs
        self.run(2 * self.k)  # compile

    def run(self, num_steps: int) -> float:
        """Run ``num_steps`` (a multiple of k) steps; seconds until the last finished."""
        start = time.perf_counter()
        acc = self.zeros()
        for _ in range(num_steps // self.k):
            host = time.perf_counter()
            inputs = distributed.put_step_inputs(self.source.step_inputs(self.step, self.k),
                                                 self.input_sharding)
            self.host_seconds += time.perf_counter() - host
            self.state, acc = self.loop(self.state, acc, self.arrays, inputs)
            self.step += self.k
            if self.step % self.log_every == 0:
                jax.device_get(acc)  # fit reads the metrics here
                acc = self.zeros()
        jax.block_until_ready((self.state, acc))
        return time.perf_counter() - start


class HandWritten:
    """A plain ``jax.jit`` step: params/opt_state donated, batch gathered on device."""

    def __init__(self, workload: Workload):
        graphdef, params, model_state = nnx.split(workload.make_model(), nnx.Param, ...)
        tx = workload.optax_tx()
        self.params, self.model_state = params, model_state
        self.opt_state = tx.init(params)
        self.arrays = {k: jnp.asarray(v) for k, v in workload.arrays.items()}
        self.batch_size = workload.batch_size
        self.num_examples = len(next(iter(workload.arrays.values())))
        self.perm = np.random.default_rng(0).permutation(self.num_examples).astype(np.int32)
        self.step = 0

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def train_step(params, opt_state, model_state, arrays, indices):
            batch = {k: jnp.take(v, indices, axis=0) for k, v in arrays.items()}

            def loss_fn(p):
                return workload.hand_loss(nnx.merge(graphdef, p, model_state), batch)

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        self.train_step = train_step
        self.run(2)  # compile

    def run(self, num_steps: int) -> float:
        """Run ``num_steps`` steps; seconds until the last finished."""
        start = time.perf_counter()
        per_epoch = self.num_examples // self.batch_size
        loss = None
        for _ in range(num_steps):
            at = (self.step % per_epoch) * self.batch_size
            indices = self.perm[at:at + self.batch_size]
            self.params, self.opt_state, loss = self.train_step(
                self.params, self.opt_state, self.model_state, self.arrays, indices)
            self.step += 1
        jax.block_until_ready((self.params, loss))
        return time.perf_counter() - start


def interleaved_ms(runners: dict[str, Callable[[int], float]], steps: int,
                   repeats: int) -> dict[str, dict[str, float]]:
    """Time each runner ``repeats`` times, alternating between them.

    Alternating spreads slow periods of a shared machine over every runner.

    Args:
      runners: name -> ``run(num_steps) -> seconds``.
      steps: steps per timed repetition.
      repeats: repetitions per runner.
    Returns:
      name -> ``{"median_ms", "min_ms"}`` per step.
    """
    times = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            times[name].append(run(steps) / steps * 1e3)
    return {name: {"median_ms": float(np.median(t)), "min_ms": float(np.min(t))}
            for name, t in times.items()}
