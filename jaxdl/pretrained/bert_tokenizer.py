"""A BERT checkpoint directory's tokenizer (``tokenizer.json``) as padded id arrays.

The ``tokenizers`` package (``pip install 'jaxdl[pretrained]'``) runs the file's
own pipeline: its normaliser (BERT's lower-cases and strips accents when the file
says so), WordPiece, and the post-processor that adds ``[CLS]`` and ``[SEP]``.
jaxdl sets truncation to ``max_length`` tokens (specials included) and does its
own padding, whatever the file stores for either.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from jaxdl.errors import ConfigError, DataError

TOKENIZER_FILE = "tokenizer.json"


def import_tokenizers():
    """The ``tokenizers`` module, or an ImportError saying which extra installs it."""
    try:
        import tokenizers
    except ImportError:
        raise ImportError("BertTokenizer needs the 'tokenizers' package, which is not "
                          "installed; install jaxdl's extra: pip install 'jaxdl[pretrained]' "
                          "(or pip install 'tokenizers>=0.20')") from None
    return tokenizers


class BertTokenizer:
    """WordPiece ids, attention masks and segment ids of sentences.

    Args:
      tokenizer: a ``tokenizers.Tokenizer`` (truncation and padding are reset here).
      max_length: tokens per sentence at most, ``[CLS]`` and ``[SEP]`` included.
      pad_id: the id written at padded positions.
    Use ``BertTokenizer.from_directory(dir)``.
    """

    def __init__(self, tokenizer, *, max_length: int, pad_id: int):
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise ConfigError(f"BertTokenizer max_length={max_length!r}: expected an integer "
                              ">= 2 ([CLS] and [SEP])")
        self.max_length, self.pad_id = max_length, int(pad_id)
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        self.tokenizer = tokenizer

    @classmethod
    def from_directory(cls, directory: str | os.PathLike, *,
                       max_length: int = 128) -> BertTokenizer:
        """The tokenizer of a Hugging Face directory's ``tokenizer.json``.

        The padding token is ``tokenizer_config.json``'s ``pad_token`` when that file
        exists, else ``[PAD]``.

        Raises:
          ImportError: ``tokenizers`` is not installed (names the extra).
          ConfigError: no ``tokenizer.json``, a file ``tokenizers`` cannot read, a
            padding token missing from the vocabulary, or a bad ``max_length``.
        """
        tokenizers = import_tokenizers()
        directory = os.fspath(directory)
        path = os.path.join(directory, TOKENIZER_FILE)
        if not os.path.isfile(path):
            raise ConfigError(f"{path}: no such file; expected the tokenizer of a Hugging "
                              "Face directory (tokenizers' JSON format)")
        try:
            tokenizer = tokenizers.Tokenizer.from_file(path)
        except Exception as error:  # the Rust side raises plain Exceptions
            raise ConfigError(f"{path}: tokenizers cannot read it ({error})") from None
        pad_token = "[PAD]"
        config_path = os.path.join(directory, "tokenizer_config.json")
        if os.path.isfile(config_path):
            with open(config_path, encoding="utf-8") as handle:
                pad = json.load(handle).get("pad_token", pad_token)
            pad_token = pad.get("content", pad_token) if isinstance(pad, dict) else pad
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ConfigError(f"{path}: the padding token {pad_token!r} is not in the "
                              "vocabulary; expected it there (BERT's is [PAD])")
        if tokenizer.post_processor is None:
            raise ConfigError(f"{path}: has no post_processor; expected BERT's, which adds "
                              "[CLS] and [SEP]")
        return cls(tokenizer, max_length=max_length, pad_id=pad_id)

    def _encodings(self, sentences: Sequence[str]):
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
            raise DataError("BertTokenizer: expected a sequence of str sentences, got "
                            f"{type(sentences).__name__}"
                            + ("" if isinstance(sentences, str) else
                               f" holding {sorted({type(s).__name__ for s in sentences})}"))
        return self.tokenizer.encode_batch(list(sentences))

    def lengths(self, sentences: Sequence[str]) -> np.ndarray:
        """int64 ``[N]``: tokens per sentence after truncation, specials included."""
        return np.asarray([len(e.ids) for e in self._encodings(sentences)], np.int64)

    def encode(self, sentences: Sequence[str], *, pad_to: int | None = None) -> dict:
        """Padded arrays of ``N`` sentences.

        Args:
          sentences: N strings.
          pad_to: the width T; None pads to the longest sentence.
        Returns:
          ``{"input_ids", "attention_mask", "token_type_ids"}``, int32 ``[N, T]``
          (mask 1 at tokens, 0 at padding; padding on the right).
        Raises:
          DataError: ``pad_to`` shorter than a sentence's tokens, or not a sequence
            of strings.
        """
        encodings = self._encodings(sentences)
        longest = max((len(e.ids) for e in encodings), default=0)
        width = longest if pad_to is None else pad_to
        if width < longest:
            raise DataError(f"BertTokenizer.encode pad_to={pad_to}: a sentence has {longest} "
                            f"tokens (max_length={self.max_length}); expected pad_to >= "
                            f"{longest}")
        out = {"input_ids": np.full((len(encodings), width), self.pad_id, np.int32),
               "attention_mask": np.zeros((len(encodings), width), np.int32),
               "token_type_ids": np.zeros((len(encodings), width), np.int32)}
        for row, e in enumerate(encodings):
            n = len(e.ids)
            out["input_ids"][row, :n] = e.ids
            out["attention_mask"][row, :n] = 1
            out["token_type_ids"][row, :n] = e.type_ids
        return out
