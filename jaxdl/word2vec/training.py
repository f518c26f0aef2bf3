"""word2vec through the one training loop: a model, a batch source and a sparse step for `fit`.

`fit` then gives word2vec what every family gets: checkpoints, exact resume from
the workdir, the progress bar and `metrics.jsonl` (loss per example, words seen,
words/s, learning rate). The pieces:

* `Word2VecModel`: the two `[V, D]` tables as `nnx.Param`s, so
  `TrainState.params == {"input": ..., "output": ...}`;
* `Word2VecSource`: the fit source protocol; a step's input is its step number
  and its batch is `make_batch(corpus, key(seed), step)`, a pure function;
* `make_word2vec_step`: `sgns_update` with word2vec's linearly decaying learning
  rate read from `state.step`; it updates the parameters itself, so `fit` is
  given `tx=optax.identity()` (no optimizer state).

Example:
    >>> settings = Word2VecSettings(epochs=1)
    >>> result, vectors = fit_word2vec_model(corpus, settings, config=word2vec_fit_config(settings),
    ...                                      workdir="/tmp/w2v")
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from ml_collections import ConfigDict

from jaxdl import losses
from jaxdl.config import default_config
from jaxdl.word2vec.stream import Word2VecStreamSource
from jaxdl.errors import ConfigError
from jaxdl.evaluation.word_vectors import WordVectors
from jaxdl.metrics import Metric
from jaxdl.word2vec.corpus import Word2VecArrays, Word2VecCorpus
from jaxdl.word2vec.settings import Word2VecSettings, learning_rate
from jaxdl.word2vec.sgns import init_params, make_batch, sgns_update
from jaxdl.train.loop import FitResult, fit
from jaxdl.train.state import TrainState
from jaxdl.train.task import Task


class Word2VecModel(nnx.Module):
    """word2vec's two tables: input (the exported word vectors) and output (context) vectors.

    Args:
        vocab_size: V. dim: D.
        seed: initialisation seed; the tables equal `init_params(split(key(seed))[0], V, D)`
            (the data key is the other half of the split).
    """

    def __init__(self, vocab_size: int, dim: int, *, seed: int = 0):
        init_key, _ = jax.random.split(jax.random.key(seed))
        tables = init_params(init_key, vocab_size, dim)
        self.input = nnx.Param(tables["input"])
        self.output = nnx.Param(tables["output"])

    def __call__(self, ids: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """Input vectors of `ids` int `[...]` -> float32 `[..., D]`."""
        return jnp.take(self.input[...], ids, axis=0)


class Word2VecSource:
    """The fit source of a word2vec corpus: step `s` trains on `make_batch(corpus, key, s)`.

    Args:
        corpus: the encoded corpus.
        settings: batch_centres, streams, window, negative, sg, update, shared_negatives, sample, seed.
    """

    def __init__(self, corpus: Word2VecCorpus, settings: Word2VecSettings):
        self.corpus, self.settings = corpus, settings
        self.steps_per_epoch = corpus.steps_per_epoch(settings.batch_centres, settings.epoch_steps_multiple)
        # Mean corpus positions per step, for words/s between two log events.
        self.words_per_step = corpus.num_tokens / self.steps_per_epoch

    def device_arrays(self, sharding: jax.sharding.Sharding | None = None) -> Word2VecArrays:
        """The padded corpus arrays, placed with `sharding` (replicated)."""
        s = self.settings
        arrays = self.corpus.device_arrays(batch_centres=s.batch_centres, sample=s.sample,
                                           multiple=s.epoch_steps_multiple)
        return jax.device_put(arrays, sharding) if sharding is not None else arrays

    def step_inputs(self, step: int, num_steps: int) -> np.ndarray:
        """The step numbers `step … step + num_steps - 1`, int32 `[num_steps, 1]`.

        The trailing axis is the one `fit` shards over the mesh's `data` axis
        (a batch axis); one step number per step means one data shard.
        """
        return np.arange(step, step + num_steps, dtype=np.int32)[:, None]

    def make_batch(self, arrays: Word2VecArrays, step_input: jax.Array) -> dict:
        """The batch of global step `step_input[0]` (pure: a function of (seed, step)); see `make_batch`."""
        s, step = self.settings, step_input[0]
        # (init key, data key) = split(key(seed)), as Word2VecModel takes the first.
        _, data_key = jax.random.split(jax.random.key(s.seed))
        return make_batch(arrays, data_key, step, batch_centres=s.batch_centres, window=s.window,
                          negative=s.negative, sg=s.sg, shared_negatives=not s.per_pair_negatives,
                          hashed_noise=s.update == "sequential", streams=s.streams)


def make_word2vec_step(settings: Word2VecSettings, total_steps: int):
    """A pure `train_step(state, batch) -> (state, stats)` for `fit(..., train_step=...)`.

    The learning rate decays linearly from `alpha` at step 0 to `min_alpha` at
    `total_steps` (read from `state.step`, so resume is exact); `sgns_update`
    applies the sparse SGD update to `state.params` directly.

    Returns:
        The step; stats are `{"metrics": {"loss": {loss_sum, count}, "words": {words},
        "words_per_second": {words}, "lr": {lr_sum, steps}}, "finite": bool}`.
    """

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        lr = learning_rate(state.step, total_steps, settings.alpha, settings.min_alpha)
        params, stats = sgns_update(state.params, batch, lr, sg=settings.sg, update=settings.update,
                                    row_cap=settings.row_cap, chunks=settings.chunks,
                                    lock_free=settings.lock_free)
        words = batch["words"].astype(jnp.float32)
        metrics = {
            "loss": {"loss_sum": stats["loss_sum"], "count": stats["pairs"]},
            "words": {"words": words},
            "words_per_second": {"words": words},
            "lr": {"lr_sum": lr, "steps": jnp.ones((), jnp.float32)},
        }
        return state.replace(step=state.step + 1, params=params), {
            "metrics": metrics, "finite": jnp.isfinite(stats["loss_sum"])}

    return train_step


def _words_per_second_metric() -> Metric:
    """Words of the interval divided by the wall time since the previous read.

    `fit` reads the accumulated statistics at each log boundary (after the device
    finished), so the clock between two reads times those steps; the first
    interval of a process includes compilation.
    """
    last = {"time": time.perf_counter()}

    def compute(totals) -> float:
        now = time.perf_counter()
        seconds, last["time"] = now - last["time"], now
        return float(totals["words"]) / max(seconds, 1e-9)

    return Metric(stats=None, compute=compute)


def word2vec_task() -> Task:
    """The Task fit reads metric names and formulas from (the step is `make_word2vec_step`)."""
    return Task(loss=losses.softmax_cross_entropy, metrics={
        "words": Metric(stats=None, compute=lambda t: float(t["words"])),
        "words_per_second": _words_per_second_metric(),
        "lr": Metric(stats=None, compute=lambda t: float(t["lr_sum"]) / max(float(t["steps"]), 1.0)),
    })


def word2vec_fit_config(settings: Word2VecSettings, base: ConfigDict | None = None) -> ConfigDict:
    """`base` (default `default_config()`) with the train keys word2vec's settings imply.

    Sets `train.num_epochs = epochs`, `train.num_steps = 0`, `train.batch_size =
    batch_centres`, `train.steps_per_loop = steps_per_call` and `seed`; the
    logging and checkpoint keys of `base` are kept.
    """
    config = default_config() if base is None else ConfigDict(base.to_dict())
    config.seed = settings.seed
    config.train.num_steps = 0
    config.train.num_epochs = settings.epochs
    config.train.batch_size = settings.batch_centres
    config.train.steps_per_loop = settings.steps_per_call
    config.train.eval_train = False
    return config


def dispatch_steps(total_steps: int, steps_per_call: int, periods: tuple[int, ...] = ()) -> int:
    """The steps per dispatch `fit` runs: d ≤ steps_per_call dividing the run and its boundaries.

    `fit` runs a dispatch of `steps_per_loop` steps while a whole one fits before
    the next boundary (the run's end, a log, eval or checkpoint step) and the
    leftover steps one by one, in a second compiled program (about as long to
    compile as the first; docs/EMBEDDING_RESULTS.md). The run's total
    already is a multiple of steps_per_call (`Word2VecSettings.epoch_steps_multiple`);
    a log or checkpoint period may not be. With d dividing the total and every
    period there are no leftovers. d is the largest such
    divisor in [steps_per_call / 2, steps_per_call]; without one, steps_per_call.
    The steps themselves are the same either way (same batches, same bits).

    Args:
        total_steps: steps of the run. steps_per_call: the configured dispatch size.
        periods: boundary periods in steps (0 = none).
    """
    for d in range(steps_per_call, max(1, steps_per_call // 2) - 1, -1):
        if total_steps % d == 0 and all(p % d == 0 for p in periods if p):
            return d
    return steps_per_call


def fit_word2vec_model(
    corpus: Word2VecCorpus, settings: Word2VecSettings, *, config: ConfigDict | None = None,
    workdir: str | None = None, mesh: Any = None, source: str = "arrays",
) -> tuple[FitResult, WordVectors]:
    """Trains word2vec with `fit` (checkpoints, resume, logs) and returns the input vectors.

    Args:
        corpus: the encoded corpus (vocabulary most frequent first).
        settings: word2vec hyper-parameters; `epochs`, `seed`, `batch_centres` and
            `steps_per_call` must agree with `config` (use `word2vec_fit_config`).
        config: the run config (default `word2vec_fit_config(settings)`).
        workdir: checkpoints and metrics.jsonl go here; a re-run resumes.
        mesh: passed to `fit`.
        source: "arrays" (the corpus on the device) or "stream" (on the host, each
            step's chunk shipped: `jaxdl.word2vec.stream`); the same batches.

    Returns:
        (fit's result, WordVectors `[V, dim]` of the input vectors).

    Raises:
        ConfigError: `config` disagrees with `settings`, or asks for nan_policy 'skip'.
    """
    config = word2vec_fit_config(settings) if config is None else config
    expected = {"seed": settings.seed, "train.num_epochs": settings.epochs,
                "train.batch_size": settings.batch_centres, "train.num_steps": 0}
    for key, value in expected.items():
        section = config
        for part in key.split("."):
            section = section[part]
        if section != value:
            raise ConfigError(f"config.{key}={section!r} disagrees with the word2vec settings "
                              f"(expected {value!r}); build the config with word2vec_fit_config(settings)")
    if config.nan_policy == "skip":
        raise ConfigError("config.nan_policy='skip' is not supported by word2vec's sparse step "
                          "(keeping the old tables would copy them every step); use 'none' or 'raise'")
    if source not in ("arrays", "stream"):
        raise ConfigError(f"config.data.source={source!r}; expected 'arrays' or 'stream'")
    corpus.check_trainable(min_count=settings.min_count)  # one context pair, before compiling
    if source == "stream":
        train = Word2VecStreamSource(corpus, settings)
    else:
        train = Word2VecSource(corpus, settings)
    total_steps = settings.epochs * train.steps_per_epoch
    periods = (config.train.log_every, config.train.eval_every, config.checkpoint.every_steps)
    steps_per_loop = dispatch_steps(total_steps, config.train.steps_per_loop, periods)
    if steps_per_loop != config.train.steps_per_loop:
        config = ConfigDict(config.to_dict())  # the caller's config stays as given
        config.train.steps_per_loop = steps_per_loop
    model = Word2VecModel(len(corpus.words), settings.dim, seed=settings.seed)
    try:
        result = fit(model, word2vec_task(), train, config=config, workdir=workdir, mesh=mesh,
                     train_step=make_word2vec_step(settings, total_steps), tx=optax.identity())
    finally:
        if source == "stream":
            train.close()
    return result, WordVectors(corpus.words, np.asarray(result.state.params["input"]))
