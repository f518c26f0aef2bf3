"""Plain-text corpora: one sentence (or paragraph) per non-blank line, in a file or a
directory of files (sorted by relative path), plain or gzip.

``read_corpus`` holds a whole corpus; ``stream_sentences`` yields the same token
lists one by one, one line in memory at a time, so a corpus of billions of words
can be counted or encoded in one pass without being held (the language model and
word2vec read it so).
"""

from __future__ import annotations

import os
from typing import Iterator

from jaxdl.data.formats.text_files import list_text_files, read_text, refuse_empty, split_lines, stream_lines
from jaxdl.data.text import tokenize


def read_corpus(path: str | os.PathLike, *, lower: bool = True, encoding: str = "utf-8") -> list[list[str]]:
    """Reads a plain-text corpus: one sentence (or paragraph) per non-blank line.

    Args:
      path: a text file, or a directory whose files are read in sorted order.
      lower: lower-case tokens (see `jaxdl.data.text.tokenize`).
      encoding: the files' text encoding.

    Returns:
      One token list per non-blank line, files in sorted order.

    Raises:
      DataError: no line of any file holds a token.
    """
    sentences = []
    for file in list_text_files(path):
        for line in split_lines(read_text(file, encoding=encoding)):
            tokens = tokenize(line, lower=lower)
            if tokens:
                sentences.append(tokens)
    if not sentences:
        refuse_empty(path, "no line holds a token")
    return sentences


def stream_sentences(path: str | os.PathLike, *, lower: bool = True,
                     encoding: str = "utf-8") -> Iterator[list[str]]:
    """The token lists of ``read_corpus``, one non-blank line at a time."""
    for line in stream_lines(path, encoding=encoding):
        tokens = tokenize(line, lower=lower)
        if tokens:
            yield tokens
