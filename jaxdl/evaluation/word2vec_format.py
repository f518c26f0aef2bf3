"""Read and write the original word2vec vector files (text and binary).

Text format: a header line `V D`, then V lines `word v1 v2 … vD` separated by single
spaces (the C tool leaves a trailing space, which readers accept).

Binary format: the header line `V D\\n`, then per word the word's bytes, one space,
and D little-endian float32 values. The C tool (`word2vec.c`) writes a newline after
each vector; gensim does not. The reader accepts both (a newline before a word is
skipped), and the writer follows the C tool.

Which of the two a file is, is read from its first record (``binary=None``); a
file that contradicts an explicit ``binary=`` is refused with a ``DataError``
instead of being parsed into garbage. Gzip-compressed files are read directly.
"""

from __future__ import annotations

import os

import numpy as np

from jaxdl.data.opener import open_binary
from jaxdl.errors import DataError
from jaxdl.evaluation.word_vectors import WordVectors

_FLOAT32_LE = np.dtype("<f4")


def save_word2vec_format(
    path: str | os.PathLike, words: list[str], vectors: np.ndarray, *, binary: bool = False
) -> None:
    """Write word vectors in word2vec text or binary format.

    Args:
        path: output file.
        words: V words (no whitespace inside a word), most frequent first by convention.
        vectors: float `[V, D]`, written as float32.
        binary: binary format (else text).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise DataError(f"save_word2vec_format: vectors shape {vectors.shape}, expected [{len(words)}, D]")
    for word in words:
        if not word or any(ch.isspace() for ch in word):
            raise DataError(
                f"save_word2vec_format: word {word!r} is empty or contains whitespace; "
                "the word2vec format separates words from numbers by a space"
            )
    vocab_size, dim = vectors.shape
    with open(path, "wb") as handle:
        handle.write(f"{vocab_size} {dim}\n".encode())
        for word, vector in zip(words, vectors):
            if binary:
                handle.write(word.encode("utf-8") + b" " + vector.astype(_FLOAT32_LE).tobytes() + b"\n")
            else:
                # str(np.float32) is the shortest text that reads back to the same float32.
                handle.write(f"{word} {' '.join(str(v) for v in vector)}\n".encode("utf-8"))


def _parse_header(line: bytes, path: str | os.PathLike, encoding: str) -> tuple[int, int]:
    fields = line.decode(encoding, errors="replace").split()
    try:
        vocab_size, dim = (int(f) for f in fields)
    except ValueError:
        vocab_size = dim = -1
    if len(fields) != 2 or vocab_size < 0 or dim <= 0:
        raise DataError(
            f"{path}:1: word2vec header is {line[:80]!r}, expected two integers 'V D' "
            "(vocabulary size and vector dimension)"
        )
    return vocab_size, dim


def load_word2vec_format(
    path: str | os.PathLike,
    *,
    binary: bool | None = None,
    limit: int | None = None,
    encoding: str = "utf-8",
    unicode_errors: str = "strict",
) -> WordVectors:
    """Read a word2vec text or binary file.

    Like gensim, a word that appears again later is ignored (the first vector wins).

    Args:
        path: the vector file.
        binary: True for the binary format, False for text, None to detect it.
        limit: read at most this many words (the first, most frequent ones).
        encoding: encoding of the words.
        unicode_errors: `str.decode` error handler for words ('replace' helps with
            files whose words the C tool truncated inside a multi-byte character).

    Returns:
        WordVectors with the words in file order, float32 vectors `[V, D]`.

    Raises:
        DataError: bad header, a line or record that does not match the header, a
            file that ends early, no vectors at all, or a file in the other format
            than ``binary`` says; the message names the file and line/record.
    """
    with open_binary(path) as handle:
        header = handle.readline()
        vocab_size, dim = _parse_header(header, path, encoding)
        if vocab_size == 0:
            raise DataError(f"{path}:1: header '0 {dim}' announces no vectors; expected at "
                            "least one word")
        if limit is not None:
            vocab_size = min(vocab_size, limit)
        binary = _check_format(handle, path, dim, encoding, binary)
        reader = _read_binary if binary else _read_text
        words, vectors = reader(handle, path, vocab_size, dim, encoding, unicode_errors)
    keep = _first_occurrences(words)
    return WordVectors([words[i] for i in keep], vectors[keep])


def _sniff(record: bytes, dim: int, encoding: str) -> str:
    """``"text"``, ``"binary"`` or ``"unclear"`` for the first record after the header.

    A binary record holds raw float32 bytes, among which control bytes; a text
    record is a line ``word v1 … vD`` (a word in another encoding is left to the
    text reader, whose error says which encoding to pass).
    """
    line = record.decode(encoding, errors="replace").rstrip("\r\n ")
    if any(ord(ch) < 0x20 and ch != "\t" for ch in line):
        return "binary"
    return "text" if len(line.split(" ")) == dim + 1 else "unclear"


def _check_format(handle, path, dim: int, encoding: str, binary: bool | None) -> bool:
    """The format of the records after the header: ``binary`` checked, or detected."""
    start = handle.tell()
    record = handle.readline(64 * 1024 + 32 * dim)
    handle.seek(start)
    kind = _sniff(record, dim, encoding)
    if binary is None:
        return kind == "binary"
    if binary and kind == "text":
        raise DataError(f"{path}:2: binary=True, but the file is in the word2vec text format "
                        f"(line 2 reads {record[:60]!r}); pass binary=False or leave binary "
                        "unset to detect the format")
    if not binary and kind == "binary":
        raise DataError(f"{path}:2: binary=False, but the file looks like the word2vec binary "
                        f"format (record 1 holds raw bytes {record[:30]!r}); pass binary=True "
                        "or leave binary unset to detect the format")
    return binary


def _first_occurrences(words: list[str]) -> list[int]:
    seen: set[str] = set()
    keep = []
    for row, word in enumerate(words):
        if word not in seen:
            seen.add(word)
            keep.append(row)
    return keep


def _decode_word(raw: bytes, where: str, encoding: str, unicode_errors: str) -> str:
    try:
        return raw.decode(encoding, errors=unicode_errors)
    except UnicodeDecodeError as error:
        raise DataError(
            f"{where}: word bytes {raw[:40]!r} are not valid {encoding} ({error.reason}); "
            "pass encoding=... or unicode_errors='replace'"
        ) from None


def _read_text(handle, path, vocab_size: int, dim: int, encoding: str, unicode_errors: str):
    words: list[str] = []
    vectors = np.empty((vocab_size, dim), dtype=np.float32)
    for row in range(vocab_size):
        line_no = row + 2
        line = handle.readline()
        if not line:
            raise DataError(
                f"{path}:{line_no}: file ends after {row} vectors, header promised {vocab_size}; "
                "fix the header's vocabulary size or the truncated file"
            )
        text = _decode_word(line, f"{path}:{line_no}", encoding, unicode_errors)
        parts = text.rstrip("\r\n ").split(" ")
        if len(parts) != dim + 1:
            raise DataError(
                f"{path}:{line_no}: line has {len(parts) - 1} values after the word {parts[0][:40]!r}, "
                f"expected {dim} (header 'V D' = '{vocab_size} {dim}'; is this really the text format?)"
            )
        try:
            vectors[row] = np.asarray(parts[1:], dtype=np.float32)
        except ValueError:
            raise DataError(
                f"{path}:{line_no}: a value of word {parts[0][:40]!r} is not a number: {parts[1:4]!r}…"
            ) from None
        words.append(parts[0])
    return words, vectors


def _read_binary(handle, path, vocab_size: int, dim: int, encoding: str, unicode_errors: str):
    data = handle.read()
    record_bytes = dim * _FLOAT32_LE.itemsize
    words: list[str] = []
    vectors = np.empty((vocab_size, dim), dtype=np.float32)
    cursor = 0
    for row in range(vocab_size):
        where = f"{path}: record {row + 1} (byte {cursor + 0})"
        # The C tool ends every vector with a newline; gensim does not. Skip it.
        while cursor < len(data) and data[cursor : cursor + 1] == b"\n":
            cursor += 1
        space = data.find(b" ", cursor)
        if space < 0 or len(data) - (space + 1) < record_bytes:
            raise DataError(
                f"{where}: file ends after {row} of the {vocab_size} vectors the header promised "
                f"(each needs a word, a space and {record_bytes} bytes); is this really the binary format?"
            )
        words.append(_decode_word(data[cursor:space], where, encoding, unicode_errors))
        vectors[row] = np.frombuffer(data, dtype=_FLOAT32_LE, count=dim, offset=space + 1)
        cursor = space + 1 + record_bytes
    return words, vectors
