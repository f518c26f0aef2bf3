"""Standalone word2vec training: several batches per dispatch with `lax.scan`."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxdl.errors import ConfigError
from jaxdl.evaluation.word_vectors import WordVectors
from jaxdl.word2vec.sgns import Params, init_params, make_batch, sgns_update
from jaxdl.word2vec.corpus import Word2VecArrays, Word2VecCorpus


def learning_rate(step: jax.Array, total_steps: int, alpha: float, min_alpha: float) -> jax.Array:
    """Linear decay from `alpha` at step 0 towards `min_alpha` at `total_steps` (floor)."""
    progress = step.astype(jnp.float32) / total_steps
    return jnp.maximum(alpha - (alpha - min_alpha) * progress, min_alpha)


@functools.partial(
    jax.jit,
    static_argnames=("steps", "total_steps", "batch_centres", "window", "negative", "sg", "shared_negatives",
                     "row_cap", "alpha", "min_alpha"),
    donate_argnums=(0,),
)
def train_steps(
    params: Params,
    corpus: Word2VecArrays,
    key: jax.Array,
    first_step: jax.Array,
    stop_step: jax.Array,
    *,
    steps: int,
    total_steps: int,
    batch_centres: int,
    window: int,
    negative: int,
    sg: bool,
    shared_negatives: bool,
    row_cap: float,
    alpha: float,
    min_alpha: float,
) -> tuple[Params, dict]:
    """Runs steps `first_step … first_step + steps - 1` (those < `stop_step`) in one dispatch.

    Returns:
        (params, stats) with stats summed over the steps: `loss_sum`, `pairs`, `words`.
    """

    def one_step(params, step):
        def update(params):
            batch = make_batch(corpus, key, step, batch_centres=batch_centres, window=window, negative=negative,
                               sg=sg, shared_negatives=shared_negatives)
            lr = learning_rate(step, total_steps, alpha, min_alpha)
            params, stats = sgns_update(params, batch, lr, sg=sg, row_cap=row_cap)
            return params, {**stats, "words": batch["words"].astype(jnp.float32)}

        def skip(params):  # steps past the end of training, in the last dispatch
            zero = jnp.zeros((), jnp.float32)
            return params, {"loss_sum": zero, "pairs": zero, "words": zero}

        return jax.lax.cond(step < stop_step, update, skip, params)

    params, stats = jax.lax.scan(one_step, params, first_step + jnp.arange(steps, dtype=jnp.int32))
    return params, jax.tree.map(jnp.sum, stats)


@dataclasses.dataclass(frozen=True)
class Word2VecSettings:
    """word2vec hyper-parameters (word2vec.c flag in brackets).

    Attributes:
        dim: vector size [-size]. window: maximum half-width [-window].
        negative: noise words per example [-negative]. min_count: [-min-count].
        sample: sub-sampling threshold, 0 = off [-sample].
        alpha, min_alpha: learning rate decaying linearly to the floor min_alpha [-alpha].
        epochs: passes over the corpus [-iter]. sg: skip-gram, else CBOW [-cbow 0/1].
        shared_negatives: skip-gram: K noise words per centre shared by its window
            (same expected update, 2W× less memory traffic) instead of K per pair.
        row_cap: per-batch contributions a row takes at full strength (see `sgns_update`).
        batch_centres: consecutive corpus positions per batch.
        steps_per_call: batches per device dispatch (`lax.scan`).
        seed: seed of initialisation, sub-sampling, windows and negatives.
    """

    dim: int = 100
    window: int = 5
    negative: int = 5
    min_count: int = 5
    sample: float = 1e-3
    alpha: float = 0.025
    min_alpha: float = 1e-4
    epochs: int = 5
    sg: bool = True
    shared_negatives: bool = True
    row_cap: float = 16.0
    batch_centres: int = 1024  # fastest on a 2-core CPU (larger batches fall out of cache)
    steps_per_call: int = 16
    seed: int = 0

    def __post_init__(self):
        positive = ("dim", "window", "negative", "min_count", "epochs", "batch_centres", "steps_per_call")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"word2vec {name}={value!r}: expected an integer ≥ 1")
        if not self.alpha > 0:
            raise ConfigError(f"word2vec alpha={self.alpha!r}: expected a learning rate > 0")
        if not 0 <= self.min_alpha <= self.alpha:
            raise ConfigError(f"word2vec min_alpha={self.min_alpha!r}: expected 0 ≤ min_alpha ≤ alpha={self.alpha}")
        if not self.sample >= 0:
            raise ConfigError(f"word2vec sample={self.sample!r}: expected a threshold ≥ 0 (0 disables it)")


def fit_word2vec(
    corpus: Word2VecCorpus,
    settings: Word2VecSettings,
    *,
    params: Params | None = None,
    first_step: int = 0,
    stop_step: int | None = None,
    progress: bool = True,
) -> tuple[Params, dict]:
    """Trains on a prepared corpus from `first_step` up to `stop_step` (default: the end).

    Resuming with the params saved at step s and `first_step=s` gives the same
    result, bit for bit, as an uninterrupted run (batches depend on (seed, step)).

    Returns:
        (params {"input", "output": float32 `[V, D]`}, info) with info `steps`,
        `total_steps`, `words` (corpus positions visited), `seconds` (wall time,
        compilation included) and `loss` (mean loss per example of the last dispatch).
    """
    s = settings
    arrays = corpus.device_arrays(batch_centres=s.batch_centres, sample=s.sample)
    total_steps = corpus.steps_per_epoch(s.batch_centres) * s.epochs
    stop_step = total_steps if stop_step is None else min(stop_step, total_steps)
    init_key, data_key = jax.random.split(jax.random.key(s.seed))
    if params is None:
        params = init_params(init_key, len(corpus.words), s.dim)
    run = functools.partial(
        train_steps, corpus=arrays, key=data_key, stop_step=jnp.int32(stop_step), steps=s.steps_per_call,
        total_steps=total_steps, batch_centres=s.batch_centres, window=s.window, negative=s.negative,
        sg=s.sg, shared_negatives=s.shared_negatives, row_cap=s.row_cap, alpha=s.alpha, min_alpha=s.min_alpha)
    bar = tqdm(total=corpus.num_tokens * s.epochs, initial=0, unit="word", unit_scale=True,
               disable=not progress, desc="word2vec sg" if s.sg else "word2vec cbow")
    started = time.perf_counter()
    step, words, loss = first_step, 0, float("nan")
    while step < stop_step:
        params, stats = run(params, first_step=jnp.int32(step))
        step += s.steps_per_call
        chunk_words = int(stats["words"])  # blocks until the dispatch finishes
        words += chunk_words
        loss = float(stats["loss_sum"]) / max(float(stats["pairs"]), 1.0)
        bar.update(chunk_words)
        bar.set_postfix(loss=f"{loss:.3f}")
    bar.close()
    jax.block_until_ready(params)
    info = {"steps": min(step, stop_step), "total_steps": total_steps, "words": words,
            "seconds": time.perf_counter() - started, "loss": loss}
    return params, info


def train_word2vec(
    sentences: Iterable[Sequence[str]],
    *,
    progress: bool = True,
    **settings,
) -> WordVectors:
    """Builds the vocabulary, trains word2vec and returns the input vectors.

    Args:
        sentences: token lists, one per sentence (windows never cross sentences).
        progress: show a tqdm bar in words/s.
        **settings: fields of `Word2VecSettings` (dim, window, negative, min_count,
            sample, alpha, min_alpha, epochs, sg, batch_centres, steps_per_call, seed).

    Returns:
        WordVectors over the vocabulary (most frequent first), float32 `[V, dim]`,
        the input vectors, as word2vec.c and gensim export.
    """
    config = Word2VecSettings(**settings)
    corpus = Word2VecCorpus.from_sentences(sentences, min_count=config.min_count)
    params, _ = fit_word2vec(corpus, config, progress=progress)
    return WordVectors(corpus.words, np.asarray(params["input"]))
