"""word2vec hyper-parameters: the `config.word2vec` section, its validated settings, the learning rate."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

from jaxdl.errors import ConfigError

UPDATES = ("sequential", "batched")


@dataclasses.dataclass(frozen=True)
class Word2VecSettings:
    """word2vec hyper-parameters (word2vec.c flag in brackets).

    Attributes:
        dim: vector size [-size]. window: maximum half-width [-window].
        negative: noise words per example [-negative]. min_count: [-min-count].
        sample: sub-sampling threshold, 0 = off [-sample].
        alpha, min_alpha: learning rate decaying linearly over the run's corpus
            positions to the floor min_alpha [-alpha].
        epochs: passes over the corpus [-iter]. sg: skip-gram, else CBOW [-cbow 0/1].
        update: "sequential" applies each (centre, context) example of a batch in
            corpus order against the tables as word2vec.c's training thread does,
            with K noise words drawn per example; "batched" scores the whole batch
            against the same stale tables and adds the summed updates (row_cap and
            shared_negatives apply only to it). The default, sequential, is the one
            whose quality matched gensim's; docs/EMBEDDING_RESULTS.md has both measured.
        shared_negatives: batched skip-gram: K noise words per centre shared by its
            window (the same expected update, 2W times fewer noise rows) instead of K per pair.
        row_cap: batched: per-batch contributions a row takes at full strength (see `sgns_update`).
        chunks: sequential: contiguous runs of a batch's centres trained independently
            (one thread each, up to the CPUs available) from the batch-start tables:
            the first run trains the tables in place, the others copies, whose
            changes are then added in run order; 1 is word2vec.c's single thread (with
            a second CPU drawing its noise words ahead of it). The vectors depend on
            `chunks`, never on the machine's thread count.
        lock_free: sequential with chunks > 1: the runs train the shared tables in
            place at the same time, unlocked, as word2vec.c's and gensim's threads do
            (Hogwild): no private copies and no merge, so faster, but the vectors then
            depend on thread timing (a resumed run is not bitwise the uninterrupted
            one). The C++ kernel only; the pure-JAX path computes the merged runs.
        streams: contiguous spans of the corpus trained side by side: each batch
            holds batch_centres / streams consecutive centres from each span, as
            word2vec.c's and gensim's threads each train their own part of the corpus
            at once (with chunks = streams and lock_free, one thread per span is
            exactly that). 1 = each batch is batch_centres consecutive positions. The
            default, 16, scored higher than 1 on WordSim353 and SimLex-999 on both
            benchmark corpora (docs/EMBEDDING_RESULTS.md): consecutive updates then
            come from 16 distant parts of the corpus, not one passage.
        batch_centres: corpus positions per batch. The default, 4096 (1024 before), costs fewer
            dispatches and kernel calls per word and scored as high (docs/EMBEDDING_RESULTS.md).
        steps_per_call: batches per device dispatch (`fit`'s steps_per_loop); `fit_word2vec_model`
            takes the largest divisor of the run's steps and boundaries down to half of it, if
            one exists, so no leftover steps need a second program (`training.dispatch_steps`).
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
    update: str = "sequential"
    shared_negatives: bool = True
    row_cap: float = 16.0
    chunks: int = 1
    lock_free: bool = False
    streams: int = 16
    batch_centres: int = 4096
    steps_per_call: int = 16
    seed: int = 0

    def __post_init__(self):
        positive = ("dim", "window", "negative", "min_count", "epochs", "batch_centres", "steps_per_call", "chunks",
                    "streams")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"word2vec {name}={value!r}: expected an integer ≥ 1")
        if not self.alpha > 0:
            raise ConfigError(f"word2vec alpha={self.alpha!r}: expected a learning rate > 0")
        if not 0 <= self.min_alpha <= self.alpha:
            raise ConfigError(f"word2vec min_alpha={self.min_alpha!r}: expected 0 ≤ min_alpha ≤ alpha={self.alpha}")
        if not self.sample >= 0:
            raise ConfigError(f"word2vec sample={self.sample!r}: expected a threshold ≥ 0 (0 disables it)")
        if self.chunks > self.batch_centres:
            raise ConfigError(f"word2vec chunks={self.chunks}: expected at most batch_centres={self.batch_centres}")
        if self.batch_centres % self.streams:
            raise ConfigError(f"word2vec streams={self.streams}: expected a divisor of batch_centres="
                              f"{self.batch_centres} (each batch takes batch_centres / streams centres "
                              "from every stream)")
        if not isinstance(self.lock_free, bool):
            raise ConfigError(f"word2vec lock_free={self.lock_free!r}: expected True or False")
        if self.lock_free and (self.update != "sequential" or self.chunks < 2):
            raise ConfigError(f"word2vec lock_free=True with update={self.update!r}, chunks={self.chunks}: "
                              "expected update='sequential' and chunks ≥ 2 (the runs it shares the tables between)")
        if self.update not in UPDATES:
            raise ConfigError(f"word2vec update={self.update!r}: expected one of {UPDATES}")

    @property
    def epoch_steps_multiple(self) -> int:
        """What an epoch's steps are rounded up to (with batches of padding only) so that
        `epochs` epochs are a whole number of `steps_per_call` dispatches: then `fit` needs
        no second compiled program for leftover steps (one compilation less; docs/EMBEDDING_RESULTS.md)."""
        return self.steps_per_call // math.gcd(self.steps_per_call, self.epochs)

    @property
    def per_pair_negatives(self) -> bool:
        """Whether make_batch draws K noise words per (centre, context) pair (`[B, 2W, K]`)."""
        return self.sg and (self.update == "sequential" or not self.shared_negatives)

    @classmethod
    def from_config(cls, config: ConfigDict) -> "Word2VecSettings":
        """The settings of a run config: its `word2vec` section and its `seed`.

        Raises:
            ConfigError: a key of the section is not a setting (named, with the valid ones).
        """
        section = config.word2vec.to_dict()
        fields = {f.name for f in dataclasses.fields(cls)} - {"seed"}
        unknown = sorted(set(section) - fields)
        if unknown:
            raise ConfigError(f"config.word2vec.{unknown[0]}: unknown word2vec setting; "
                              f"expected one of {sorted(fields)}")
        return cls(**section, seed=config.seed)


def word2vec_config(**overrides) -> ConfigDict:
    """The default `config.word2vec` section (every `Word2VecSettings` field but seed).

    Example:
        >>> config.word2vec = word2vec_config(epochs=3)
    """
    section = {f.name: f.default for f in dataclasses.fields(Word2VecSettings) if f.name != "seed"}
    unknown = sorted(set(overrides) - set(section))
    if unknown:
        raise ConfigError(f"word2vec_config({unknown[0]}=...): unknown word2vec setting; "
                          f"expected one of {sorted(section)}")
    return ConfigDict({**section, **overrides})


def learning_rate(step: jax.Array, total_steps: int, alpha: float, min_alpha: float) -> jax.Array:
    """Linear decay from `alpha` at step 0 towards `min_alpha` at `total_steps` (floor).

    Every step but an epoch's last covers `batch_centres` corpus positions, so
    this is word2vec.c's decay over the words processed, per batch.
    """
    progress = step.astype(jnp.float32) / total_steps
    return jnp.maximum(alpha - (alpha - min_alpha) * progress, min_alpha)
