"""A language-model corpus streamed from disk: an int32 id stream in a file, read
chunk by chunk.

``write_token_stream`` encodes sentences one at a time into a flat int32 file (a
leading ``</s>``, then each sentence and its ``</s>``: ``token_stream``'s layout)
and ``TokenChunks`` serves chunk ``i`` of it — exactly row ``i`` of
``language_model_dataset`` over the same stream — through a memory map, so only
the chunks of a step are read. ``streamed_language_model_splits`` builds both
splits of a corpus this way in three passes over it (count the sentences, count
the training words, encode), never holding the corpus or its ids;
``language_model_streams`` adds the training source, the streamed held-out split
and the unigram baseline a language-model run needs.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable

import numpy as np

from jaxdl.data.stdlib_corpus import embedded_corpus
from jaxdl.data.sequence_sets import SPLIT_BLOCK, held_out_blocks, unigram_perplexity_of_targets
from jaxdl.data.streamed_split import StreamedSplit
from jaxdl.data.streaming import StreamingSource
from jaxdl.data.text import Vocab
from jaxdl.data.formats.plain_text import stream_sentences
from jaxdl.errors import DataError

_WRITE_BUFFER = 1 << 16  # ids gathered before each write


def write_token_stream(path: str, sentences: Iterable[list[str]], vocab: Vocab) -> int:
    """Encode ``sentences`` with ``vocab`` into ``path`` (int32, native order); returns the
    number of ids. Written to ``path + ".partial"`` and renamed, so a reader never sees
    half a file."""
    count, pending, buffered = 0, [np.asarray([vocab.eos_id], np.int32)], 1
    with open(path + ".partial", "wb") as handle:
        for sentence in sentences:
            pending.append(vocab.encode(sentence, add_eos=True))
            buffered += len(pending[-1])
            if buffered >= _WRITE_BUFFER:
                handle.write(np.concatenate(pending).tobytes())
                count, pending, buffered = count + buffered, [], 0
        if pending:
            handle.write(np.concatenate(pending).tobytes())
            count += buffered
    os.replace(path + ".partial", path)
    return count


class TokenChunks:
    """Next-token chunks of an int32 id stream on disk; a ``ExampleReader``.

    Chunk ``i`` reads ``stream[i*T : i*T + T]`` and predicts ``stream[i*T + 1 :
    i*T + T + 1]``; the last chunk is right-padded (masks 0). Fields as
    ``language_model_dataset``: ``tokens``, ``y`` int32 ``[T]``, ``token_mask``,
    ``target_mask`` float32 ``[T]``. The file is mapped lazily in each process
    (a worker process gets the path, not the data).

    Args:
      path: the file ``write_token_stream`` wrote.
      seq_len: T.
      name: the split's name, in errors.
    """

    def __init__(self, path: str, seq_len: int, *, name: str = "train"):
        self.path, self.seq_len, self.name = path, int(seq_len), name
        size = os.path.getsize(path)
        if size % 4 or size < 8:
            raise DataError(f"split '{name}': {path} holds {size} bytes; expected a whole number "
                            "of int32 ids, at least 2 (one input and one target)")
        self.num_ids = size // 4
        self.num_chunks = -(-(self.num_ids - 1) // self.seq_len)
        self._stream = None

    def __getstate__(self):
        return {**self.__dict__, "_stream": None}

    @property
    def stream(self) -> np.ndarray:
        """The whole id stream, int32 ``[num_ids]``, memory-mapped."""
        if self._stream is None:
            self._stream = np.memmap(self.path, np.int32, mode="r")
        return self._stream

    def targets(self) -> np.ndarray:
        """Every target id once, int32 ``[num_ids - 1]`` (memory-mapped)."""
        return self.stream[1:]

    def __len__(self) -> int:
        return self.num_chunks

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < self.num_chunks:
            raise IndexError(f"chunk {index} of split '{self.name}' ({self.num_chunks} chunks)")
        start, width = index * self.seq_len, self.seq_len
        real = min(width, self.num_ids - 1 - start)
        tokens = np.zeros(width, np.int32)
        targets = np.zeros(width, np.int32)
        tokens[:real] = self.stream[start:start + real]
        targets[:real] = self.stream[start + 1:start + 1 + real]
        mask = (np.arange(width) < real).astype(np.float32)
        return {"tokens": tokens, "token_mask": mask, "y": targets, "target_mask": mask.copy()}


def streamed_language_model_splits(
        sentences: Callable[[], Iterable[list[str]]], directory: str, *, seq_len: int,
        test_fraction: float, split_seed: int, min_count: int, max_size: int | None,
        suffix: str = "") -> tuple[Vocab, TokenChunks, TokenChunks]:
    """Train and held-out ``TokenChunks`` of a corpus, split as ``split_in_blocks`` splits it.

    Args:
      sentences: called once per pass; yields the corpus's token lists in order.
      directory: where ``train{suffix}.int32`` and ``test{suffix}.int32`` are written.
      seq_len, test_fraction, split_seed: as ``language_model_dataset`` / ``split_in_blocks``.
      min_count, max_size: as ``Vocab.build``, over the training sentences.
      suffix: distinguishes the files of processes sharing ``directory``.
    Returns:
      ``(vocab, train, test)``, the same vocabulary and chunks as the in-memory path.
    """
    held = held_out_blocks(sum(1 for _ in sentences()), test_fraction=test_fraction,
                           seed=split_seed)

    def side(test: bool):
        return (s for i, s in enumerate(sentences()) if (i // SPLIT_BLOCK in held) == test)

    vocab = Vocab.build(side(False), min_count=min_count, max_size=max_size)
    os.makedirs(directory, exist_ok=True)
    splits = []
    for name in ("train", "test"):
        path = os.path.join(directory, f"{name}{suffix}.int32")
        write_token_stream(path, side(name == "test"), vocab)
        splits.append(TokenChunks(path, seq_len, name=name))
    return vocab, splits[0], splits[1]


def corpus_passes(data) -> Callable[[], Iterable[list[str]]]:
    """One fresh pass over ``data.corpus``'s token lists per call, streamed from disk
    (``lower``, ``encoding``), or the embedded corpus; ``level="char"`` gives the
    characters of each sentence's tokens joined by single spaces."""
    def sentences():
        corpus = (stream_sentences(data.corpus, lower=data.lower, encoding=data.encoding)
                  if data.corpus else embedded_corpus())
        return (list(" ".join(s)) for s in corpus) if data.level == "char" else corpus
    return sentences


def language_model_streams(config, directory: str, *, suffix: str = ""):
    """Everything a streamed language-model run reads, from ``config.data``.

    Args:
      config: reads ``data.corpus`` (see ``corpus_passes``), ``seq_len``,
        ``test_fraction``, ``split_seed``, ``min_count``, ``max_vocab`` (word level
        only), the ``StreamingSource.from_config`` keys, ``train.batch_size`` and ``seed``.
      directory, suffix: where the id files go.
    Returns:
      ``(vocab, train StreamingSource, test StreamedSplit, unigram test perplexity,
      {split: {"examples", "tokens"}})`` — as the in-memory path computes them.
    """
    data = config.data
    vocab, train, test = streamed_language_model_splits(
        corpus_passes(data), directory, seq_len=data.seq_len, test_fraction=data.test_fraction,
        split_seed=data.split_seed, min_count=data.min_count,
        max_size=data.max_vocab if data.level == "word" else None, suffix=suffix)
    unigram = unigram_perplexity_of_targets(train.targets(), test.targets(), len(vocab))
    summary = {c.name: {"examples": len(c), "tokens": c.num_ids - 1} for c in (train, test)}
    return (vocab, StreamingSource.from_config(train, config),
            StreamedSplit(test, name="test", workers=data.get("workers", 0),
                          prefetch=data.get("prefetch", 2)), unigram, summary)
