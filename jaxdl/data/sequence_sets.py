"""Padded sequence datasets that the one training loop (`jaxdl.train.loop.fit`) reads.

Every dataset here is an `ArrayDataset` of fixed-width arrays:

* `tokens` int32 `[N, T]`: word (or character) ids, right-padded with `<pad>`;
* `token_mask` float32 `[N, T]`: 1 at real positions, 0 at padding;
* `y`: the target, int32 `[N]` (a class) or `[N, T]` (a tag / next token per position);
* `target_mask` float32 `[N, T]` (per-position targets only): which positions
  count in the loss and metrics; usually `token_mask`, but a subset of it for a
  focused evaluation (e.g. out-of-vocabulary words only);
* tagging with character features adds `chars` int32 `[N, T, L]` and `char_mask`.

The token mask is called `token_mask`, not `mask`, because the trainer writes
its own example mask into `batch["mask"]` (padded evaluation batches); the tasks
in `jaxdl.train.task` combine the two.

Why no length bucketing: `fit` draws batches as index permutations of one
dataset (a pure function of seed and step, which exact resume relies on), and
its jitted step needs one static shape. So sequences are padded to one width
`max_len` (longer ones are truncated — the `max_len` knob bounds the padding
waste) and the masked scans make padding free of effect on the results;
`jaxdl.data.text.bucket_batches` remains for custom loops that trade one
compilation per bucket width for less padding.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.text import Vocab, encode_chars, pad_batch
from jaxdl.errors import ConfigError, DataError


def _check_width(name: str, value: int) -> None:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name}={value!r}; expected a positive integer")


def label_index(labels: Sequence[str], known: Sequence[str], *, where: str) -> np.ndarray:
    """Class ids of string labels, int32 `[N]`.

    Args:
      labels: one label per example.
      known: the class names in id order (e.g. sorted training labels).
      where: names the data in the error message (a file path or split name).

    Raises:
      DataError: a label is not in `known` (e.g. a test label never seen in training).
    """
    index = {label: i for i, label in enumerate(known)}
    missing = sorted({label for label in labels if label not in index})
    if missing:
        raise DataError(f"{where}: labels {missing[:5]} are not among the {len(known)} training "
                        f"classes {list(known)[:10]}; every evaluated label must occur in training")
    return np.asarray([index[label] for label in labels], np.int32)


def classification_dataset(
    sentences: Sequence[Sequence[str]], labels: Sequence[str], vocab: Vocab, classes: Sequence[str],
    *, max_len: int, name: str,
) -> ArrayDataset:
    """One label per sentence: `{"tokens", "token_mask": [N, T], "y": int32 [N]}`.

    Args:
      sentences: N token lists (empty ones get a single `<unk>` so each row has a real token).
      labels: N class names.
      vocab: maps tokens to ids (`<unk>` for unknown ones).
      classes: class names in id order.
      max_len: T; longer sentences keep their first T tokens.
      name: the split's name ("train", "test", ...).
    """
    _check_width("max_len", max_len)
    if len(sentences) != len(labels):
        raise DataError(f"split '{name}': {len(sentences)} sentences but {len(labels)} labels")
    ids = [vocab.encode(s) if len(s) else np.asarray([vocab.unk_id], np.int32) for s in sentences]
    tokens, token_mask = pad_batch(ids, max_len=max_len, pad_id=vocab.pad_id)
    return ArrayDataset({"tokens": tokens, "token_mask": token_mask,
                         "y": label_index(labels, classes, where=f"split '{name}'")}, name=name)


def tagging_dataset(
    sentences: Sequence[Sequence[tuple[str, str]]], vocab: Vocab, tags: Sequence[str],
    *, max_len: int, name: str, lower: bool = True,
    char_vocab: Vocab | None = None, max_word_len: int = 20,
) -> ArrayDataset:
    """One tag per word: tokens, token_mask, `y` int32 `[N, T]`, target_mask (+ chars).

    Args:
      sentences: N sentences of `(word, tag)` pairs (e.g. from `read_conllu`).
      vocab: word vocabulary; words are looked up lower-cased when `lower`.
      tags: tag names in id order.
      max_len: T words per sentence (longer sentences are truncated).
      name: the split's name.
      lower: look words up lower-cased (characters keep their case either way,
        so capitalisation still reaches the character features).
      char_vocab: character vocabulary; adds `chars`/`char_mask` `[N, T, max_word_len]`.
      max_word_len: characters kept per word (L).
    """
    _check_width("max_len", max_len)
    words = [[w for w, _ in sentence] for sentence in sentences]
    keys = [[w.lower() for w in s] if lower else s for s in words]
    tokens, token_mask = pad_batch([vocab.encode(s) for s in keys], max_len=max_len, pad_id=vocab.pad_id)
    tag_ids = [label_index([t for _, t in sentence], tags, where=f"split '{name}'") for sentence in sentences]
    y, _ = pad_batch(tag_ids, max_len=max_len, pad_id=0)
    arrays = {"tokens": tokens, "token_mask": token_mask, "y": y, "target_mask": token_mask}
    if char_vocab is not None:
        _check_width("max_word_len", max_word_len)
        arrays["chars"], arrays["char_mask"] = encode_chars(
            words, char_vocab, max_len=max_len, max_word_len=max_word_len)
    return ArrayDataset(arrays, name=name)


def out_of_vocabulary_mask(dataset: ArrayDataset, vocab: Vocab) -> np.ndarray:
    """float32 `[N, T]`: 1 at real positions whose word mapped to `<unk>` (not in `vocab`)."""
    arrays = dataset.arrays
    return ((arrays["tokens"] == vocab.unk_id) & (arrays["token_mask"] > 0)).astype(np.float32)


def with_target_mask(dataset: ArrayDataset, target_mask: np.ndarray, *, name: str) -> ArrayDataset:
    """The same examples, scored only where `target_mask [N, T]` is 1 (e.g. OOV words)."""
    arrays = dict(dataset.arrays)
    if target_mask.shape != arrays["token_mask"].shape:
        raise DataError(f"target_mask shape {target_mask.shape} != token_mask shape "
                        f"{arrays['token_mask'].shape} in split '{dataset.name}'")
    arrays["target_mask"] = np.asarray(target_mask, np.float32) * arrays["token_mask"]
    return ArrayDataset(arrays, name=name)


def token_stream(sentences: Sequence[Sequence[str]], vocab: Vocab) -> np.ndarray:
    """A corpus as one id stream, int32 `[n]`: each sentence followed by `</s>`.

    The leading `</s>` makes the first word a prediction target too (the model
    sees "a sentence ended" as its context, like every later sentence start).
    """
    pieces = [np.asarray([vocab.eos_id], np.int32)]
    for sentence in sentences:
        pieces.append(vocab.encode(sentence, add_eos=True))
    return np.concatenate(pieces)


def language_model_dataset(stream: np.ndarray, *, seq_len: int, name: str) -> ArrayDataset:
    """Cuts an id stream into next-token chunks: `tokens`, `y` `[N, seq_len]` and masks.

    Chunk i reads `stream[i*T : i*T + T]` and predicts `stream[i*T + 1 : i*T + T + 1]`;
    every stream token after the first is a target exactly once. The last chunk
    is right-padded (masks 0). Each chunk starts from a zero state.

    Args:
      stream: int `[n]` ids with n >= 2 (see `token_stream`).
      seq_len: T, tokens per chunk (the back-propagation-through-time length).
      name: the split's name.
    """
    _check_width("seq_len", seq_len)
    stream = np.asarray(stream, np.int32)
    if stream.ndim != 1 or len(stream) < 2:
        raise DataError(f"split '{name}': the token stream has {stream.size} ids; expected at "
                        "least 2 (one input and one target)")
    num_targets = len(stream) - 1
    num_chunks = -(-num_targets // seq_len)
    width = num_chunks * seq_len
    inputs = np.zeros(width, np.int32)
    targets = np.zeros(width, np.int32)
    inputs[:num_targets] = stream[:-1]
    targets[:num_targets] = stream[1:]
    mask = (np.arange(width) < num_targets).astype(np.float32)
    shape = (num_chunks, seq_len)
    mask = mask.reshape(shape)
    return ArrayDataset({"tokens": inputs.reshape(shape), "token_mask": mask,
                         "y": targets.reshape(shape), "target_mask": mask}, name=name)


def unigram_perplexity(train: ArrayDataset, test: ArrayDataset, vocab_size: int,
                       *, excluded_ids: Sequence[int] = (0,)) -> float:
    """Held-out perplexity of an add-one smoothed unigram model of the training targets.

    The model's support is the vocabulary less `excluded_ids` (default `<pad>`,
    which is never a target), with `<unk>` a token like any other — the same
    targets the language model is scored on.

    Args:
      train: a `language_model_dataset`; its masked `y` are counted.
      test: a `language_model_dataset`; its masked `y` are scored.
      vocab_size: V.
      excluded_ids: ids outside the support.

    Returns:
      `exp(-mean log p(y))` over the test targets.
    """
    def targets(ds: ArrayDataset) -> np.ndarray:
        return ds.arrays["y"][ds.arrays["target_mask"] > 0]

    return unigram_perplexity_of_targets(targets(train), targets(test), vocab_size,
                                         excluded_ids=excluded_ids, test_name=test.name)


def unigram_perplexity_of_targets(train_targets: np.ndarray, test_targets: np.ndarray,
                                  vocab_size: int, *, excluded_ids: Sequence[int] = (0,),
                                  test_name: str = "test") -> float:
    """`unigram_perplexity` of the real target ids themselves, int `[n_train]`, `[n_test]`
    (e.g. a token stream on disk without its first id)."""
    counts = np.bincount(train_targets, minlength=vocab_size).astype(np.float64) + 1.0
    counts[list(excluded_ids)] = 0.0
    log_probs = np.log(np.maximum(counts, 1e-300)) - np.log(counts.sum())
    test_targets = np.asarray(test_targets)
    if np.any(counts[test_targets] == 0):
        raise DataError(f"split '{test_name}' has targets among excluded_ids={list(excluded_ids)}")
    return float(np.exp(-log_probs[test_targets].mean()))


SPLIT_BLOCK = 20  # sentences per held-out block


def split_in_blocks(sentences: Sequence, *, test_fraction: float, block: int = SPLIT_BLOCK,
                    seed: int = 0) -> tuple[list, list]:
    """A deterministic held-out split of a corpus by contiguous blocks of sentences.

    Whole blocks go to the test side, so held-out text keeps its running context
    (a random sentence split would put each test sentence among its training
    neighbours); blocks are drawn from the whole corpus, so both sides cover all
    of its sources.

    Returns:
      `(train_sentences, test_sentences)`, each in corpus order.
    """
    test_blocks = held_out_blocks(len(sentences), test_fraction=test_fraction, block=block,
                                  seed=seed)
    train, test = [], []
    for i, sentence in enumerate(sentences):
        (test if i // block in test_blocks else train).append(sentence)
    return train, test


def held_out_blocks(num_sentences: int, *, test_fraction: float, block: int = SPLIT_BLOCK,
                    seed: int = 0) -> set[int]:
    """The blocks (sentence `i` is in block `i // block`) `split_in_blocks` holds out.

    A function of the sentence count alone, so a corpus streamed from disk is
    split the same way in two passes (count, then route).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction={test_fraction!r}; expected a number in (0, 1)")
    num_blocks = -(-num_sentences // block)
    if num_blocks < 2:
        raise DataError(f"corpus has {num_sentences} sentences; expected more than {block} to "
                        "split into train and held-out blocks")
    held = max(1, int(round(test_fraction * num_blocks)))
    return set(np.random.default_rng(seed).choice(num_blocks, held, replace=False).tolist())


def dataset_summary(datasets: Mapping[str, ArrayDataset]) -> dict:
    """Examples and real tokens per split, for an experiment's summary."""
    return {name: {"examples": len(ds), "tokens": int(ds.arrays["token_mask"].sum())}
            for name, ds in datasets.items()}
