"""Host-side corpus for word2vec: vocabulary, counts, and the corpus as device id arrays.

The vocabulary keeps words seen at least `min_count` times, most frequent first
(ties in order of first appearance); out-of-vocabulary tokens are dropped from the
corpus before training, as word2vec.c and gensim do, so windows span over them.
"""

from __future__ import annotations

import array
import dataclasses
import os
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.data.formats.plain_text import stream_sentences  # the one streamed reader; re-exported
from jaxdl.errors import ConfigError, DataError

class Word2VecArrays(NamedTuple):
    """The corpus on the device, padded so that every batch is a fixed-size slice.

    Layout: one empty block of `batch_centres` positions, the N corpus positions,
    then padding up to `(steps_per_epoch + 2) * batch_centres`. Padding has
    sentence id -1 and is never a centre or a context.

    Attributes:
        ids: int32 `[(S + 2) * B]` word ids.
        sentence_ids: int32 `[(S + 2) * B]` sentence index per position (-1 = padding).
        keep_probability: float32 `[V]` sub-sampling keep probability per word.
        noise_accept: float32 `[V]` alias-method acceptance probability per slot.
        noise_alias: int32 `[V]` alias-method fallback word per slot.
    """

    ids: jax.Array
    sentence_ids: jax.Array
    keep_probability: jax.Array
    noise_accept: jax.Array
    noise_alias: jax.Array


def keep_probability(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec.c's sub-sampling keep probability per word, float32 `[V]`.

    keep(w) = (sqrt(f / (sample · total)) + 1) · (sample · total) / f, with f the
    word's count and total the number of in-vocabulary words; values above 1 mean
    "always keep". `sample == 0` disables sub-sampling.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample == 0:
        return np.ones(len(counts), dtype=np.float32)
    threshold = sample * counts.sum()
    return ((np.sqrt(counts / threshold) + 1) * threshold / counts).astype(np.float32)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """word2vec's noise distribution ∝ count^power, float64 `[V]` summing to 1."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    return weights / weights.sum()


def alias_table(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table: draw slot i uniformly, keep i if u < accept[i], else alias[i].

    Exact for the given distribution and O(1) per draw (two look-ups), unlike a
    binary search of the cumulative distribution.

    Returns:
        accept float32 `[V]`, alias int32 `[V]`.
    """
    size = len(probabilities)
    scaled = np.asarray(probabilities, dtype=np.float64) * size
    accept = np.ones(size, dtype=np.float64)
    alias = np.arange(size, dtype=np.int32)
    small = [i for i in range(size) if scaled[i] < 1.0]
    large = [i for i in range(size) if scaled[i] >= 1.0]
    while small and large:
        low, high = small.pop(), large[-1]
        accept[low], alias[low] = scaled[low], high
        scaled[high] -= 1.0 - scaled[low]
        if scaled[high] < 1.0:
            small.append(large.pop())
    # Leftovers are 1 up to rounding: they always accept.
    return accept.astype(np.float32), alias


BLOCK = 1 << 22  # tokens per step of the corpus-length passes, bounding their temporaries


def _kept_before(kept: np.ndarray, ends: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """int64 `[S]`: how many of `kept[:end]` are true, for each (non-decreasing) `end` of `ends`.

    A running count block by block, so the temporary is `block` long, not the corpus.
    """
    before = np.zeros(len(ends), np.int64)
    total = 0
    for start in range(0, len(kept), block):
        running = np.cumsum(kept[start : start + block], dtype=np.int64) + total
        first = np.searchsorted(ends, start + 1, side="left")  # the ends in (start, start + block]
        last = np.searchsorted(ends, start + len(running), side="right")
        before[first:last] = running[ends[first:last] - 1 - start]
        total = int(running[-1])
    return before


@dataclasses.dataclass(frozen=True)
class Word2VecCorpus:
    """Vocabulary and corpus ids for word2vec training.

    Attributes:
        words: V vocabulary words, most frequent first.
        counts: int64 `[V]` corpus counts.
        ids: int32 `[N]` the in-vocabulary tokens of the corpus in order.
        sentence_ids: int32 `[N]` index of the sentence each token belongs to.
        raw_words: number of tokens read, out-of-vocabulary ones included.
        source: the file or directory read (named in errors), or a description.
    """

    words: list[str]
    counts: np.ndarray
    ids: np.ndarray
    sentence_ids: np.ndarray
    raw_words: int
    source: str = "word2vec corpus"

    @classmethod
    def from_sentences(cls, sentences: Iterable[Sequence[str]], *, min_count: int = 5,
                       source: str = "word2vec corpus") -> "Word2VecCorpus":
        """Builds the vocabulary (count ≥ `min_count`) and encodes the corpus, in one pass.

        `sentences` may be a stream (e.g. `stream_sentences`): each sentence is read
        once and kept only as int32 provisional ids (an `array`, not Python ints);
        the peak holds a few int32 arrays of the corpus length (measured figures
        in docs/EMBEDDING_RESULTS.md), the result two (ids and sentence ids).

        Args:
            sentences: token lists; context windows never cross from one to the next.
            min_count: minimum corpus count of a vocabulary word.
            source: the corpus file or directory, named in errors.
        """
        if min_count < 1:
            raise ConfigError(f"min_count={min_count!r}: expected an integer ≥ 1")
        provisional: dict[str, int] = {}  # word -> id in order of first appearance
        tokens, lengths = array.array("i"), array.array("q")
        for sentence in sentences:
            before = len(tokens)
            tokens.extend(provisional.setdefault(t, len(provisional)) for t in sentence)
            lengths.append(len(tokens) - before)
        provisional_ids = np.frombuffer(tokens, dtype=np.int32) if len(tokens) else np.zeros(0, np.int32)
        raw_words = len(provisional_ids)
        counts = np.zeros(len(provisional), np.int64)
        for start in range(0, raw_words, BLOCK):  # block by block: bincount casts to int64
            counts += np.bincount(provisional_ids[start : start + BLOCK], minlength=len(provisional))
        # A stable sort on -count breaks ties by first appearance.
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] >= min_count]
        if not len(order):
            raise DataError(
                f"{source}: no word occurs at least min_count={min_count} times "
                f"({raw_words} tokens, {len(provisional)} distinct); lower min_count or use a larger corpus"
            )
        final = np.full(len(provisional), -1, dtype=np.int32)
        final[order] = np.arange(len(order), dtype=np.int32)
        # Few corpus-length arrays at a time (4 + 4 + 1 bytes a word at the peak): the
        # provisional ids are freed once remapped, and the sentence ids are built for
        # the kept tokens only, from the kept tokens before each sentence's end.
        remapped = np.empty(raw_words, np.int32)
        for start in range(0, raw_words, BLOCK):  # so the index cast to int64 is one block long
            remapped[start : start + BLOCK] = final[provisional_ids[start : start + BLOCK]]
        del provisional_ids, tokens
        kept = remapped >= 0
        ends = np.cumsum(np.frombuffer(lengths, np.int64) if len(lengths) else np.zeros(0, np.int64))
        kept_lengths = np.diff(_kept_before(kept, ends), prepend=0)
        ids = remapped[kept]
        del remapped, kept
        sentence_ids = np.repeat(np.arange(len(ends), dtype=np.int32), kept_lengths)
        words = list(provisional)
        return cls(
            words=[words[i] for i in order],
            counts=counts[order].astype(np.int64),
            ids=ids,
            sentence_ids=sentence_ids,
            raw_words=int(raw_words),
            source=source,
        )

    @classmethod
    def from_files(cls, path: str | os.PathLike, *, min_count: int = 5, lower: bool = True,
                   encoding: str = "utf-8") -> "Word2VecCorpus":
        """`from_sentences(stream_sentences(path, ...))`: a file or directory, plain or gzip."""
        return cls.from_sentences(stream_sentences(path, lower=lower, encoding=encoding), min_count=min_count,
                                  source=os.fspath(path))

    def check_trainable(self, *, min_count: int, min_words: int = 1, needed_by: str = "") -> None:
        """Refuse, before training, a corpus too small for word2vec (or for a later step).

        Training needs one (centre, context) pair: a sentence of two vocabulary
        words. ``min_words`` vocabulary words are needed by ``needed_by`` (e.g. the
        experiment's 2-D plots need 3).

        Raises:
            DataError: naming ``source``, what it holds and what is needed.
        """
        held = (f"{len(self.words)} word(s) occur min_count={min_count} times, "
                f"{self.num_tokens} of its {self.raw_words} tokens are theirs")
        longest = int(np.bincount(self.sentence_ids).max()) if self.num_tokens else 0
        if longest < 2:
            raise DataError(f"{self.source}: no sentence holds two vocabulary words ({held}); "
                            "word2vec needs at least one sentence with two, a centre and its "
                            "context. Lower min_count or use a larger corpus")
        if len(self.words) < min_words:
            raise DataError(f"{self.source}: {held}; {needed_by} need(s) at least {min_words} "
                            "vocabulary words. Lower min_count or use a larger corpus")

    @property
    def num_tokens(self) -> int:
        """N, the number of in-vocabulary tokens (the positions a pass visits)."""
        return len(self.ids)

    def steps_per_epoch(self, batch_centres: int, multiple: int = 1) -> int:
        """Batches of `batch_centres` consecutive positions in one pass, rounded up to a
        `multiple` (the last ones then hold only padding: see `Word2VecSettings.epoch_steps_multiple`)."""
        steps = -(-self.num_tokens // batch_centres)
        return -(-steps // multiple) * multiple

    def device_arrays(self, *, batch_centres: int, sample: float, multiple: int = 1) -> Word2VecArrays:
        """The padded device arrays `make_batch` slices (see `Word2VecArrays`), for
        `steps_per_epoch(batch_centres, multiple)` steps an epoch."""
        if batch_centres < 1:
            raise ConfigError(f"batch_centres={batch_centres!r}: expected an integer ≥ 1")
        if sample < 0:
            raise ConfigError(f"sample={sample!r}: expected a threshold ≥ 0 (0 disables sub-sampling)")
        length = (self.steps_per_epoch(batch_centres, multiple) + 2) * batch_centres
        ids = np.zeros(length, dtype=np.int32)
        sentence_ids = np.full(length, -1, dtype=np.int32)
        ids[batch_centres : batch_centres + self.num_tokens] = self.ids
        sentence_ids[batch_centres : batch_centres + self.num_tokens] = self.sentence_ids
        accept, alias = alias_table(noise_distribution(self.counts))
        return Word2VecArrays(
            ids=jnp.asarray(ids),
            sentence_ids=jnp.asarray(sentence_ids),
            keep_probability=jnp.asarray(keep_probability(self.counts, sample)),
            noise_accept=jnp.asarray(accept),
            noise_alias=jnp.asarray(alias),
        )
