"""A classifier's embedding table from a pretrained word-vector file
(``transfer.embeddings_from=PATH``): GloVe text, fastText ``.vec``, word2vec text,
word2vec binary, or a ``.npy`` matrix beside its vocabulary
(``jaxdl.pretrained.npy_vectors_format``).

Row ``i`` of the table is the file's vector of vocabulary word ``i``. A word the
file lacks is looked up lower-cased (GloVe's releases are lower-case); a word
found neither way gets a row drawn from ``Normal(0, scale^2)``, by default with
``scale`` the standard deviation of the found vectors' entries, so random rows
have the size of pretrained ones. Words in ``zero_words`` (padding) get zeros.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from jaxdl.errors import ConfigError, DataError
from jaxdl.data.opener import open_binary
from jaxdl.pretrained.glove_format import load_glove
from jaxdl.pretrained.npy_vectors_format import load_npy_vectors
from jaxdl.evaluation.word2vec_format import load_word2vec_format
from jaxdl.evaluation.word_vectors import WordVectors

FORMATS = ("auto", "glove", "fasttext", "word2vec_text", "word2vec_binary", "npy")


def detect_format(path: str | os.PathLike) -> str:
    """``"npy"``, ``"glove"``, ``"word2vec_text"`` (also fastText ``.vec``) or ``"word2vec_binary"``.

    A file named ``*.npy`` is a NumPy matrix (its vocabulary beside it).

    A first line of two integers ``V D`` is a header; then the file is text when
    its second line is a word and D numbers, binary otherwise. A file without such
    a header is GloVe.
    """
    if os.fspath(path).endswith(".npy"):
        return "npy"
    with open_binary(path) as handle:
        first = handle.readline(1 << 20)
        fields = first.split()
        if len(fields) != 2 or not all(f.isdigit() for f in fields):
            return "glove"
        dim = int(fields[1])
        second = handle.readline(1 << 20)
    try:
        parts = second.decode("utf-8").rstrip("\r\n ").split(" ")
        np.asarray(parts[1:], dtype=np.float32)
    except (UnicodeDecodeError, ValueError):
        return "word2vec_binary"
    return "word2vec_text" if len(parts) == dim + 1 else "word2vec_binary"


def read_vectors(path: str | os.PathLike, fmt: str = "auto", *,
                 encoding: str = "utf-8") -> tuple[WordVectors, str]:
    """A word-vector file of any supported format: ``(vectors, format read)``.

    Args:
      path: the file.
      fmt: one of ``FORMATS``; ``"auto"`` uses ``detect_format``.
      encoding: of the words.
    Raises:
      ConfigError: an unknown ``fmt`` or a missing file.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"word-vector format {fmt!r}; expected one of {FORMATS}")
    if not os.path.isfile(path):
        raise ConfigError(f"transfer.embeddings_from={os.fspath(path)!r} is not a file; expected "
                          "a GloVe, fastText .vec or word2vec (text or binary) vector file, or a "
                          ".npy matrix beside its vocabulary")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "npy":
        return load_npy_vectors(path, encoding=encoding), fmt
    if fmt == "glove":
        return load_glove(path, encoding=encoding), fmt
    return load_word2vec_format(path, binary=fmt == "word2vec_binary", encoding=encoding), fmt


def embedding_matrix_from_file(
    path: str | os.PathLike, vocab_words: Sequence[str], dim: int, *, seed: int,
    fmt: str = "auto", scale: float | None = None, lowercase_fallback: bool = True,
    zero_words: Sequence[str] = (), encoding: str = "utf-8",
) -> tuple[np.ndarray, dict]:
    """The embedding table of a vocabulary from a word-vector file.

    Args:
      path: GloVe, fastText ``.vec``, word2vec text or binary file, or ``.npy`` matrix.
      vocab_words: the classifier's V words, in id order.
      dim: the model's embedding dimension D.
      seed: draws the rows of words the file lacks.
      fmt: one of ``FORMATS``.
      scale: standard deviation of the random rows; None: that of the found
        vectors' entries.
      lowercase_fallback: look a missing word up lower-cased.
      zero_words: words whose row is zeros (e.g. ``("<pad>",)``).
      encoding: of the file's words.
    Returns:
      ``(table float32 [V, D], report)``; the report holds ``path``, ``format``,
      ``file_words``, ``dim``, ``vocab_size``, ``in_vocabulary`` (rows from the
      file), ``in_vocabulary_share``, ``lowercased`` (of those, found lower-cased),
      ``random_rows``, ``random_scale``, ``random_init`` and ``missing_examples``.
    Raises:
      ConfigError: the file's dimension is not ``dim`` (both are named).
      DataError: no vocabulary word is in the file.
    """
    vectors, fmt = read_vectors(path, fmt, encoding=encoding)
    if vectors.vectors.shape[1] != dim:
        raise ConfigError(
            f"{os.fspath(path)}: word vectors have dimension {vectors.vectors.shape[1]}, but the "
            f"model's embedding has dimension {dim}; use a file of dimension {dim} or set the "
            f"model's embedding dimension to {vectors.vectors.shape[1]}")
    zero = set(zero_words)
    rows = np.full(len(vocab_words), -1, np.int64)
    lowercased = 0
    for i, word in enumerate(vocab_words):
        if word in zero:
            continue
        if word in vectors.index:
            rows[i] = vectors.index[word]
        elif lowercase_fallback and word.lower() in vectors.index:
            rows[i] = vectors.index[word.lower()]
            lowercased += 1
    found = rows >= 0
    if not found.any():
        raise DataError(
            f"{os.fspath(path)}: none of the {len(vocab_words)} vocabulary words is among its "
            f"{len(vectors)} words (vocabulary starts {list(vocab_words[:5])!r}, file starts "
            f"{vectors.words[:5]!r}); is it the right file?")
    matched = vectors.vectors[rows[found]]
    random_scale = float(np.std(matched)) if scale is None else float(scale)
    table = np.random.default_rng(seed).normal(0.0, random_scale, (len(vocab_words), dim))
    table = table.astype(np.float32)
    table[found] = matched
    is_zero = np.array([w in zero for w in vocab_words], bool)
    table[is_zero] = 0.0
    missing = [w for w, f, z in zip(vocab_words, found, is_zero) if not f and not z]
    report = {
        "path": os.path.abspath(path), "format": fmt, "file_words": len(vectors), "dim": dim,
        "vocab_size": len(vocab_words), "in_vocabulary": int(found.sum()),
        "in_vocabulary_share": float(found.sum() / len(vocab_words)),
        "lowercased": lowercased, "random_rows": len(missing), "random_scale": random_scale,
        "random_init": f"normal(0, {random_scale:.4g}^2), seed {seed}",
        "missing_examples": missing[:10],
    }
    return table, report
