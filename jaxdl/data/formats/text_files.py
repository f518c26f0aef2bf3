"""Text files as the text formats read them: decoded whole, split into lines, or located
line by line.

Every reader takes ``encoding="utf-8"``, reads gzip-compressed files directly
(recognised by their magic bytes, whatever the name) and accepts LF, CRLF and
CR-only line ends. Text that does not decode raises ``DataError`` naming the
file, line and byte offset and saying which argument to pass; a file with
nothing to read in it raises ``DataError`` naming it (``refuse_empty``).
"""

from __future__ import annotations

import gzip
import os
import pathlib
import re
import zlib
from typing import Iterator

from jaxdl.data.opener import open_binary, read_bytes
from jaxdl.errors import DataError

_NEWLINE = re.compile(r"\r\n|\r|\n")


def read_text(path: str | os.PathLike, *, encoding: str = "utf-8") -> str:
    """The decoded text of a file, gunzipped if need be (a leading byte-order mark dropped).

    Raises:
      DataError: the file is missing, or its bytes are not valid `encoding`
        (the message gives line, byte offset and how to choose an encoding).
    """
    raw = read_bytes(path)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataError(
            f"{path}:{line}: byte offset {error.start} (byte {raw[error.start:error.start + 1]!r}) is not "
            f"valid {encoding}; if the file uses another encoding, pass it, e.g. encoding='latin-1'"
        ) from error
    except LookupError as error:
        raise DataError(f"encoding={encoding!r} is not a known text encoding (reading {path})") from error
    return text[1:] if text.startswith("\ufeff") else text


def split_lines(text: str) -> list[str]:
    """``text``'s lines without their endings (a final empty line dropped)."""
    # Universal newlines (LF, CRLF, CR alone, as old Mac files have), but not
    # str.splitlines, which would also split on U+2028, U+0085 etc. inside words.
    lines = _NEWLINE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def refuse_empty(path: str | os.PathLike, what: str) -> None:
    """Raises the ``DataError`` of a file with nothing to read in it (``what`` says why)."""
    raise DataError(f"{path}: {what}; expected a non-empty file (is it the right file, and "
                    "is its encoding right?)")


def list_text_files(path: str | os.PathLike) -> list[pathlib.Path]:
    """The file itself, or every non-hidden file under a directory, sorted by relative path."""
    root = pathlib.Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"{path}: no such file or directory (expected a text file or a directory of them)")
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise DataError(f"{path}: the directory holds no text files")
    return files


def line_spans(path: str, encoding: str) -> Iterator[tuple[int, int, int]]:
    """``(line number, byte offset, byte length)`` of every line of an uncompressed file,
    split as ``read_text`` splits (LF, CRLF or a lone CR; a leading byte-order mark skipped)."""
    if "\n\r".encode(encoding) != b"\n\r":
        raise DataError(f"encoding={encoding!r}: line-by-line reading needs an encoding in which "
                        "newlines are single bytes (utf-8, latin-1, ...); use read_fasttext")
    bom = "\ufeff".encode(encoding)
    number, offset = 0, 0
    with open(path, "rb") as handle:
        for raw in handle:
            start, body = offset, raw.rstrip(b"\n")
            offset += len(raw)
            if start == 0 and body.startswith(bom):
                start, body = start + len(bom), body[len(bom):]
            pieces = body.removesuffix(b"\r").split(b"\r") if body else [b""]
            for piece in pieces:
                number += 1
                yield number, start, len(piece)
                start += len(piece) + 1



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
