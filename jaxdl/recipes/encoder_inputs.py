"""What the encoder modes of a transfer sweep read: the checkpoint directory, cached
sentence embeddings, and the padded token arrays ``fit`` trains on.

* ``check_encoder_dir``: refuses a directory that is not a Hugging Face BERT
  directory (``config.json``, ``model.safetensors``, ``tokenizer.json``) before
  anything is written.
* ``cached_embeddings``: mean-pooled, L2-normalised sentence vectors
  (``jaxdl.evaluation.encoder_embeddings.encode_sentences``) of a split, computed
  once and kept in ``workdir/encoder_features/<split>.npy`` with a JSON note of
  what produced them (encoder directory, ``max_length``, a digest of the
  sentences); a note that does not match recomputes them.
* ``token_dataset``: a split as ``input_ids`` / ``attention_mask`` ``[N, W]`` and
  ``y`` ``[N]``, ``W`` the longest sentence's token count (at most ``max_length``).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

import numpy as np

from jaxdl.data.arrays import ArrayDataset
from jaxdl.errors import ConfigError
from jaxdl.workdir import write_json_atomic

REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
FEATURES_DIR = "encoder_features"


def check_encoder_dir(path: str, key: str = "config.pretrain.encoder_from") -> str:
    """``path`` as an absolute path, once it holds a BERT directory's files.

    Raises:
      ConfigError: ``path`` is empty, not a directory, or lacks one of
        ``REQUIRED_FILES`` (the message names ``key``, the path and the missing files).
    """
    if not path:
        raise ConfigError(f"{key} is empty; expected a Hugging Face BERT directory "
                          f"({', '.join(REQUIRED_FILES)}), e.g. all-MiniLM-L6-v2 from the hub")
    if not os.path.isdir(path):
        raise ConfigError(f"{key}={path!r} is not a directory; expected a Hugging Face BERT "
                          f"directory ({', '.join(REQUIRED_FILES)})")
    missing = [f for f in REQUIRED_FILES if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise ConfigError(f"{key}={path!r} has no {', '.join(missing)}; expected a Hugging "
                          f"Face BERT directory ({', '.join(REQUIRED_FILES)}; jaxdl reads "
                          "safetensors, not pytorch_model.bin)")
    return os.path.abspath(path)


def sentences_digest(sentences: Sequence[str]) -> str:
    """sha256 of the sentences (NUL-separated UTF-8)."""
    h = hashlib.sha256()
    for s in sentences:
        h.update(s.encode("utf-8") + b"\0")
    return h.hexdigest()


def cached_embeddings(workdir: str, split: str, sentences: Sequence[str], encoder_dir: str, *,
                      max_length: int, batch_size: int) -> np.ndarray:
    """float32 ``[N, H]`` sentence vectors of ``sentences`` by the encoder in ``encoder_dir``.

    Read from ``workdir/encoder_features/<split>.npy`` when its note matches,
    else computed (batches of ``batch_size``, ``max_length`` tokens) and written
    there atomically, the note last.
    """
    directory = os.path.join(workdir, FEATURES_DIR)
    path, note_path = (os.path.join(directory, f"{split}{ext}") for ext in (".npy", ".json"))
    note = {"encoder_from": encoder_dir, "max_length": int(max_length), "pooling": "mean",
            "normalize": True, "sentences": len(sentences),
            "sha256": sentences_digest(sentences)}
    if os.path.isfile(note_path) and os.path.isfile(path):
        with open(note_path) as f:
            if json.load(f) == note:
                return np.load(path)
    from jaxdl.evaluation.encoder_embeddings import encode_sentences
    from jaxdl.pretrained.bert_checkpoint import load_bert
    from jaxdl.pretrained.bert_tokenizer import BertTokenizer
    tokenizer = BertTokenizer.from_directory(encoder_dir, max_length=int(max_length))
    vectors = encode_sentences(load_bert(encoder_dir), tokenizer, list(sentences),
                               batch_size=int(batch_size), normalize=True)
    os.makedirs(directory, exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        np.save(f, vectors)
    os.replace(path + ".tmp", path)
    write_json_atomic(note_path, note)
    return vectors


def token_dataset(tokenizer, sentences: Sequence[str], y: np.ndarray, *, width: int,
                  name: str) -> ArrayDataset:
    """``{"input_ids", "attention_mask"}`` int32 ``[N, width]`` and ``y`` int32 ``[N]``."""
    encoded = tokenizer.encode(list(sentences), pad_to=int(width))
    return ArrayDataset({"input_ids": encoded["input_ids"],
                         "attention_mask": encoded["attention_mask"],
                         "y": np.asarray(y, np.int32)}, name=name)


def token_width(tokenizer, *splits: Sequence[str]) -> int:
    """The longest sentence's token count over ``splits`` (``tokenizer.max_length`` at most)."""
    return int(max(int(tokenizer.lengths(list(s)).max()) for s in splits))


__all__ = ["REQUIRED_FILES", "FEATURES_DIR", "check_encoder_dir", "sentences_digest",
           "cached_embeddings", "token_dataset", "token_width"]
