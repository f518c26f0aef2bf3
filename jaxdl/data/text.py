"""Text to padded arrays: tokenizer, vocabulary, padding, length bucketing, characters.

File readers (plain corpora, CoNLL-U, fastText) live in `jaxdl.data.formats` (plain_text, conllu, fasttext).

Example:
  >>> sentences = [tokenize(line) for line in ["The dog ate.", "A cat!"]]
  >>> vocab = Vocab.build(sentences, min_count=1)
  >>> ids, mask = pad_batch([vocab.encode(s) for s in sentences])  # [2, 4] each
"""

from __future__ import annotations

import collections
import functools
import json
import os
import re
import sys
import unicodedata
from typing import Iterable, Sequence

import numpy as np

from jaxdl.errors import ConfigError, DataError

# Scripts written without spaces between words (Han ideographs, Japanese kana):
# each character is a token, as BERT's tokenizer does, instead of one
# sentence-long "word".
_UNSPACED = ("\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
             "\U00020000-\U0002fa1f")


@functools.cache
def token_pattern() -> re.Pattern:
    """Words (letters with their combining marks), unspaced-script characters, marks.

    A word is a run of letters/digits/underscore of any script together with the
    combining marks (Unicode category M: accents in NFD text, Indic vowel signs
    and viramas) and zero-width (non-)joiners that belong to it, optionally joined
    by inner apostrophes or hyphens ("don't", "state-of-the-art"); every other
    non-space character is its own token. ``re`` has no ``\\p{M}``, so the
    marks' class is built once from ``unicodedata``.
    """
    marks = [c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c))[0] == "M"]
    ranges, start = [], marks[0]
    for previous, current in zip(marks, marks[1:] + [None]):
        if current != previous + 1:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(previous))}")
            start = current
    letter = f"(?:[^\\W{_UNSPACED}]|[{''.join(ranges)}\u200c\u200d])"
    word = f"{letter}+(?:['\u2019\\-]{letter}+)*"
    return re.compile(f"[{_UNSPACED}]|{word}|[^\\w\\s]")


# The pattern above restricted to ASCII text, where no unspaced-script character,
# combining mark, joiner or U+2019 can occur and a letter is \w: the same tokens,
# faster (most lines of most corpora are ASCII; docs/EMBEDDING_RESULTS.md).
_ASCII_TOKEN = re.compile(r"\w+(?:['\-]\w+)*|[^\w\s]")

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)
_VOCAB_FORMAT = "jaxdl.vocab"


def tokenize(text: str, *, lower: bool = True) -> list[str]:
    """Splits text into words and punctuation marks.

    The text is NFC-normalised first, so "café" typed with a combining accent
    and with a precomposed "é" give the same token; letters keep their combining
    marks and Indic words their vowel signs ("हिन्दी" stays one token); Chinese
    and Japanese characters are one token each.

    Args:
      text: any Unicode text.
      lower: lower-case the tokens (`str.lower`, Unicode-aware).

    Returns:
      Tokens in order, e.g. `tokenize("Don't stop, Zoë!") == ["don't", "stop", ",", "zoë", "!"]`.
    """
    if text.isascii():  # NFC leaves ASCII as it is; so does lower-casing
        return _ASCII_TOKEN.findall(text.lower() if lower else text)
    text = unicodedata.normalize("NFC", text)
    if lower:
        text = text.lower()
    return token_pattern().findall(text)


class Vocab:
    """A token <-> id mapping with `<pad>`=0, `<unk>`=1, `<s>`=2, `</s>`=3.

    Regular tokens follow the specials ordered by count (descending), then by
    token (ascending), so the same counts always give the same ids.
    """

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __init__(self, tokens: Sequence[str], counts: Sequence[int] | None = None):
        """Wraps a complete id-ordered token list that starts with SPECIALS.

        Use `Vocab.build` to make one from text and `Vocab.load` to read one.
        """
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise DataError(f"a vocabulary must start with {SPECIALS}; got {tuple(tokens[:4])}")
        self.tokens: list[str] = list(tokens)
        self.counts: list[int] = list(counts) if counts is not None else [0] * len(tokens)
        self.index: dict[str, int] = {}
        for i, token in enumerate(self.tokens):
            if token in self.index:
                raise DataError(f"token {token!r} appears twice in the vocabulary (ids {self.index[token]} and {i})")
            self.index[token] = i

    @classmethod
    def build(
        cls, token_lists: Iterable[Iterable[str]], *, min_count: int = 1, max_size: int | None = None,
        source: str = "",
    ) -> "Vocab":
        """Counts tokens and keeps the frequent ones.

        Args:
          token_lists: e.g. sentences as lists of tokens.
          min_count: drop tokens seen fewer times.
          max_size: the largest total size, specials included (None: no limit).
          source: the file the tokens come from, named in the error ("": none).

        Returns:
          The vocabulary; `len(vocab) <= max_size`.

        Raises:
          DataError: no token is kept (empty input, or every token rarer than
            `min_count`): everything would map to `<unk>` and a model would
            train on padding.
        """
        if min_count < 1:
            raise ConfigError(f"min_count={min_count} must be >= 1")
        if max_size is not None and max_size < len(SPECIALS):
            raise ConfigError(f"max_size={max_size} must be >= {len(SPECIALS)} (the special tokens)")
        counter = collections.Counter(token for tokens in token_lists for token in tokens)
        kept = sorted(
            ((t, c) for t, c in counter.items() if c >= min_count and t not in SPECIALS),
            key=lambda item: (-item[1], item[0]),
        )
        if not kept:
            raise DataError(
                f"{source or 'vocabulary'}: no token occurs at least min_count={min_count} times ({sum(counter.values())} "
                f"tokens, {len(counter)} distinct); the training input is empty or all its words would be "
                "<unk>. Check the file and its encoding, or lower min_count")
        if max_size is not None:
            kept = kept[: max_size - len(SPECIALS)]
        return cls(list(SPECIALS) + [t for t, _ in kept], [0] * len(SPECIALS) + [c for _, c in kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def encode(self, tokens: Iterable[str], *, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        """Token ids, int32 `[n]` (+1 per added marker); unknown tokens map to `<unk>`."""
        ids = [self.index.get(token, self.unk_id) for token in tokens]
        if add_bos:
            ids.insert(0, self.bos_id)
        if add_eos:
            ids.append(self.eos_id)
        return np.asarray(ids, np.int32)

    def decode(self, ids: Iterable[int], *, skip_pad: bool = True) -> list[str]:
        """Tokens of ids (`<pad>` dropped unless `skip_pad=False`)."""
        ids = [int(i) for i in ids]
        for i in ids:
            if not 0 <= i < len(self.tokens):
                raise DataError(f"id {i} is outside the vocabulary of size {len(self.tokens)}")
        return [self.tokens[i] for i in ids if not (skip_pad and i == self.pad_id)]

    def save(self, path: str | os.PathLike) -> None:
        """Writes the vocabulary as readable JSON: tokens in id order with their counts."""
        payload = {"format": _VOCAB_FORMAT, "version": 1, "tokens": self.tokens, "counts": self.counts}
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False, indent=0)
            handle.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        """Reads a vocabulary written by `save`."""
        try:
            with open(path, encoding="utf-8") as handle:
                payload = json.load(handle)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DataError(f"{path}: cannot read a vocabulary file: {error}") from error
        if not isinstance(payload, dict) or payload.get("format") != _VOCAB_FORMAT or "tokens" not in payload:
            raise DataError(f"{path}: not a jaxdl vocabulary (expected JSON with format={_VOCAB_FORMAT!r} and 'tokens')")
        return cls(payload["tokens"], payload.get("counts"))


def pad_batch(
    sequences: Sequence[Sequence[int]], *, max_len: int | None = None, pad_id: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pads id sequences into one array.

    Args:
      sequences: B id sequences of any lengths.
      max_len: pad (and truncate) to this length; None = the longest sequence.
      pad_id: the id written at padded positions.

    Returns:
      `(ids int32 [B, T], mask float32 [B, T])`, mask 1 at real positions.
    """
    lengths = np.asarray([min(len(s), max_len) if max_len is not None else len(s) for s in sequences], np.int64)
    width = max_len if max_len is not None else max(int(lengths.max(initial=0)), 1)
    ids = np.full((len(sequences), width), pad_id, np.int32)
    for row, (sequence, length) in enumerate(zip(sequences, lengths)):
        ids[row, :length] = np.asarray(sequence[:length], np.int32)
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.float32)
    return ids, mask


def bucket_batches(
    lengths: Sequence[int],
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    pool_batches: int = 50,
    drop_last: bool = False,
) -> list[np.ndarray]:
    """Groups example indices into batches of similar length, deterministically.

    The examples are shuffled (a pure function of `(seed, epoch)`), cut into
    pools of `pool_batches * batch_size`, each pool is sorted by length and cut
    into batches, and the batch order is shuffled. Similar lengths waste less
    padding; the pools keep enough randomness between epochs.

    Args:
      lengths: length of each example.
      batch_size: examples per batch.
      seed: data-order seed.
      epoch: epoch number; each epoch gets its own order.
      pool_batches: batches per sorted pool.
      drop_last: drop batches smaller than `batch_size`.

    Returns:
      A list of int64 index arrays; every index appears once (unless dropped).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be >= 1")
    rng = np.random.default_rng([seed, epoch])
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    pool_size = batch_size * max(pool_batches, 1)
    batches = []
    for start in range(0, len(order), pool_size):
        pool = order[start : start + pool_size]
        pool = pool[np.argsort(lengths[pool], kind="stable")]
        batches.extend(pool[i : i + batch_size] for i in range(0, len(pool), batch_size))
    if drop_last:
        batches = [b for b in batches if len(b) == batch_size]
    return [batches[i] for i in rng.permutation(len(batches))]


def encode_chars(
    sentences: Sequence[Sequence[str]],
    char_vocab: Vocab,
    *,
    max_len: int | None = None,
    max_word_len: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Character ids of each word, for the tagger's character features.

    Build `char_vocab` from characters, e.g.
    `Vocab.build(list(word) for sentence in train for word in sentence)`.

    Args:
      sentences: B sentences of words.
      char_vocab: character vocabulary (unknown characters map to `<unk>`).
      max_len: words per sentence T (None = the longest sentence); matches `pad_batch`.
      max_word_len: characters per word L (None = the longest word); longer words are cut.

    Returns:
      `(chars int32 [B, T, L], char_mask float32 [B, T, L])`, zeros at padding.
    """
    width = max_len if max_len is not None else max([len(s) for s in sentences] + [1])
    longest = max([len(w) for s in sentences for w in s[:width]] + [1])
    word_width = max_word_len if max_word_len is not None else longest
    chars = np.zeros((len(sentences), width, word_width), np.int32)
    for row, sentence in enumerate(sentences):
        for col, word in enumerate(sentence[:width]):
            ids = char_vocab.encode(word[:word_width])
            chars[row, col, : len(ids)] = ids
    lengths = np.asarray(
        [[min(len(w), word_width) for w in s[:width]] + [0] * (width - len(s[:width])) for s in sentences],
        np.int64,
    ).reshape(len(sentences), width)
    char_mask = (np.arange(word_width)[None, None, :] < lengths[..., None]).astype(np.float32)
    return chars, char_mask
