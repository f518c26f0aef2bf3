"""Read GloVe's text vector files: no header, one line `word v1 v2 … vD` per word.

The dimension D is that of the first line. Some released files (Common Crawl
840B) have words with spaces inside; a line with more than D + 1 fields takes
its last D fields as the vector and the rest, joined by spaces, as the word.
Gzip files are decompressed (`jaxdl.data.opener`).
"""

from __future__ import annotations

import os
import numpy as np

from jaxdl.data.opener import open_binary
from jaxdl.errors import DataError
from jaxdl.evaluation.word_vectors import WordVectors

def load_glove(path: str | os.PathLike, *, limit: int | None = None,
               encoding: str = "utf-8") -> WordVectors:
    """Read a GloVe text file.

    As ``load_word2vec_format``, a word that appears again later is ignored.

    Args:
      path: the vector file (plain or gzip).
      limit: read at most this many lines (the first, most frequent words).
      encoding: encoding of the words.
    Returns:
      WordVectors in file order, float32 ``[V, D]``.
    Raises:
      DataError: an empty file, a line with fewer than D + 1 fields or a value
        that is not a number; the message names the file and line.
    """
    kept: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dim = None
    with open_binary(path) as handle:
        for line_no, raw in enumerate(handle, 1):
            if limit is not None and line_no > limit:
                break
            parts = raw.decode(encoding, errors="replace").rstrip("\r\n ").split(" ")
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise DataError(f"{path}:1: line {raw[:80]!r} has no vector; expected "
                                    "'word v1 ... vD' (GloVe text format, no header)")
            if len(parts) < dim + 1:
                raise DataError(f"{path}:{line_no}: {len(parts) - 1} values after the word "
                                f"{parts[0][:40]!r}, expected {dim} (the first line's count)")
            word = " ".join(parts[:len(parts) - dim])
            if word in seen:
                continue
            try:
                rows.append(np.asarray(parts[-dim:], dtype=np.float32))
            except ValueError:
                raise DataError(f"{path}:{line_no}: a value of word {word[:40]!r} is not a "
                                f"number: {parts[-dim:][:3]!r}…") from None
            seen.add(word)
            kept.append(word)
    if dim is None:
        raise DataError(f"{path}: the file is empty; expected GloVe lines 'word v1 ... vD'")
    vectors = np.stack(rows) if rows else np.zeros((0, dim), np.float32)
    return WordVectors(kept, vectors)
