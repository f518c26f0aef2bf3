"""Line-oriented text corpora read as a stream: files or directories of them,
plain or gzip, one line in memory at a time (for the language model and word2vec).

``read_corpus`` (text_readers) holds a whole corpus; ``stream_sentences`` yields
the same token lists one by one, so a corpus of billions of words can be counted
or encoded in one pass without being held.
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import Iterator

from jaxdl.data.opener import open_binary
from jaxdl.data.text import tokenize
from jaxdl.data.text_readers import list_text_files
from jaxdl.errors import DataError

def stream_lines(path: str | os.PathLike, *, encoding: str = "utf-8") -> Iterator[str]:
    """Every line of ``path`` (a file or a directory, files in sorted order), without
    its line ending. Gzip files (by their magic bytes) are decompressed on the fly.

    Raises:
      DataError: a missing path, a gzip file cut short or corrupt, or bytes that are
        not ``encoding`` (the message names the file and line).
    """
    for file in list_text_files(path):
        line_number = 0
        try:
            # Bytes decoded line by line, so an encoding error names its exact line.
            with open_binary(file) as handle:
                for line_number, raw in enumerate(handle, 1):
                    line = raw.decode(encoding)
                    if line_number == 1 and line.startswith("\ufeff"):
                        line = line[1:]
                    yield line.rstrip("\n").removesuffix("\r")
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise DataError(f"{file}: the gzip stream ends or breaks after line {line_number} "
                            f"({err}); expected a complete gzip file (re-copy or re-compress "
                            "it)") from err
        except UnicodeDecodeError as err:
            raise DataError(f"{file}:{line_number}: byte {err.object[err.start:err.start + 1]!r} "
                            f"is not valid {encoding}; if the file uses another encoding, pass "
                            "it, e.g. encoding='latin-1'") from err


def stream_sentences(path: str | os.PathLike, *, lower: bool = True,
                     encoding: str = "utf-8") -> Iterator[list[str]]:
    """The token lists of ``read_corpus``, one non-blank line at a time."""
    for line in stream_lines(path, encoding=encoding):
        tokens = tokenize(line, lower=lower)
        if tokens:
            yield tokens
