"""word2vec's corpus streamed to the device one step's chunk at a time.

``Word2VecSource`` places the whole padded corpus on the device and each step
slices its chunk there. ``Word2VecStreamSource`` keeps the corpus on the host
and ships, per step, only the extended chunk that step reads (per stream its
``batch_centres / streams`` centre positions and ``margin`` positions on each side); the
step's batch is then the same ``make_batch`` of the same positions, keys and
step number, so both sources give the same batches and the same parameters.
The device holds the vocabulary-sized tables (sub-sampling, noise) and one
dispatch's chunks, whatever the corpus length. The next dispatch's chunks are
cut and placed in a background thread while the current one trains.
"""

from __future__ import annotations

import concurrent.futures

import jax
import numpy as np

from jaxdl.data.streaming import StepInputs
from jaxdl.word2vec.corpus import (Word2VecArrays, Word2VecCorpus, alias_table, keep_probability,
                                   noise_distribution)
from jaxdl.word2vec.settings import Word2VecSettings
from jaxdl.word2vec.sgns import make_batch


class Word2VecStreamSource:
    """The fit source of a word2vec corpus held on the host; see the module docstring.

    Args:
      corpus: the encoded corpus (its ``ids`` may be a memory map).
      settings: as ``Word2VecSource``.
    """

    def __init__(self, corpus: Word2VecCorpus, settings: Word2VecSettings):
        self.corpus, self.settings = corpus, settings
        self.streams = settings.streams
        self.block = settings.batch_centres // self.streams  # centres per stream and step
        self.margin = min(8 * settings.window, settings.batch_centres)  # make_batch's default margin
        self.steps_per_epoch = corpus.steps_per_epoch(settings.batch_centres, settings.epoch_steps_multiple)
        self.words_per_step = corpus.num_tokens / self.steps_per_epoch
        self._sharding = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="w2v-prefetch")
        self._pending = None

    def device_arrays(self, sharding: jax.sharding.Sharding | None = None) -> dict:
        """The vocabulary-sized tables ``[V]``; records the batch sharding for the chunks."""
        if sharding is not None and hasattr(sharding, "mesh"):
            from jaxdl import distributed
            self._sharding = distributed.batch_sharding(sharding.mesh, batch_axis=1)
        accept, alias = alias_table(noise_distribution(self.corpus.counts))
        tables = {"keep_probability": keep_probability(self.corpus.counts, self.settings.sample),
                  "noise_accept": accept, "noise_alias": alias}
        return jax.device_put(tables, sharding) if sharding is not None else tables

    def chunk(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and sentence ids, int32 ``[streams, b + 2 margin]`` (b = batch_centres / streams),
        of the padded corpus positions step ``step`` reads in each stream (``Word2VecArrays``
        layout: a leading empty block of batch_centres positions, -1 padding)."""
        pad, length = self.settings.batch_centres, self.block + 2 * self.margin
        ids = np.zeros((self.streams, length), np.int32)
        sentences = np.full((self.streams, length), -1, np.int32)
        for stream in range(self.streams):
            start = pad + (stream * self.steps_per_epoch + step % self.steps_per_epoch) * self.block - self.margin
            lo, hi = max(start - pad, 0), min(start + length - pad, self.corpus.num_tokens)
            if hi > lo:
                at = lo - (start - pad)
                ids[stream, at:at + hi - lo] = self.corpus.ids[lo:hi]
                sentences[stream, at:at + hi - lo] = self.corpus.sentence_ids[lo:hi]
        return ids, sentences

    def _load(self, step: int, num_steps: int) -> StepInputs:
        chunks = [self.chunk(step + i) for i in range(num_steps)]
        fields = {"ids": np.stack([c[0] for c in chunks])[:, None],
                  "sentence_ids": np.stack([c[1] for c in chunks])[:, None],
                  "step": np.arange(step, step + num_steps, dtype=np.int32)[:, None],
                  "mask": np.ones((num_steps, 1), np.float32)}
        if self._sharding is not None:
            fields = jax.device_put(fields, self._sharding)
        return StepInputs(fields)

    def step_inputs(self, step: int, num_steps: int) -> StepInputs:
        """Fields ``ids``, ``sentence_ids`` ``[k, 1, streams, b + 2 margin]``, ``step`` ``[k, 1]``
        (axis 1 is the one ``fit`` shards: one shard, as ``Word2VecSource``'s)."""
        result = None
        if self._pending is not None:
            key, future = self._pending
            self._pending = None
            if key == (step, num_steps):
                result = future.result()
        if result is None:
            result = self._load(step, num_steps)
        self._pending = ((step + num_steps, num_steps),
                         self._pool.submit(self._load, step + num_steps, num_steps))
        return result

    def make_batch(self, arrays: dict, step_input: StepInputs) -> dict:
        """The batch of the step in ``step_input`` from its chunk: ``Word2VecSource``'s batch."""
        s, fields = self.settings, step_input.fields
        corpus = Word2VecArrays(ids=fields["ids"][0], sentence_ids=fields["sentence_ids"][0],
                                keep_probability=arrays["keep_probability"],
                                noise_accept=arrays["noise_accept"],
                                noise_alias=arrays["noise_alias"])
        _, data_key = jax.random.split(jax.random.key(s.seed))
        return make_batch(corpus, data_key, fields["step"][0], batch_centres=s.batch_centres,
                          window=s.window, negative=s.negative, sg=s.sg,
                          shared_negatives=not s.per_pair_negatives,
                          hashed_noise=s.update == "sequential",
                          steps_per_epoch=self.steps_per_epoch, streams=s.streams)

    def close(self) -> None:
        """Stop the background thread."""
        if self._pending is not None:
            self._pending[1].cancel()
        self._pool.shutdown(wait=True)
