"""Opening data files whatever their compression: gzip is recognised by its magic bytes.

Every text reader (``jaxdl.data.formats.text_files``, ``jaxdl.evaluation.word2vec_format``)
opens its files here, so a ``.gz`` corpus reads like the plain one whatever its
name, and a file compressed with a format the standard library cannot stream
here (bzip2, xz, zstd) is named as such instead of failing to decode as text.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import zlib
from typing import BinaryIO

from jaxdl.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
_OTHER_COMPRESSIONS = ((b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


def _magic(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(6)
    except OSError as error:
        raise DataError(f"{path}: cannot read the file: {error.strerror or error}") from error


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """A binary file object over the (decompressed) bytes of ``path``.

    Raises:
      DataError: the file cannot be read, or it is compressed with a format other
        than gzip (the message names it).
    """
    magic = _magic(path)
    if magic.startswith(GZIP_MAGIC):
        return gzip.open(path, "rb")
    for prefix, name in _OTHER_COMPRESSIONS:
        if magic.startswith(prefix):
            raise DataError(f"{path}: the file is {name}-compressed; decompress it first, or "
                            "recompress it with gzip, which jaxdl reads directly")
    return open(path, "rb")


def read_bytes(path: str | os.PathLike) -> bytes:
    """All (decompressed) bytes of ``path``; see ``open_binary``.

    Raises:
      DataError: unreadable, a damaged gzip stream, or an unsupported compression.
    """
    with open_binary(path) as handle:
        try:
            return handle.read()
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise DataError(f"{path}: the gzip data is damaged or truncated ({error})") from error


def uncompressed_path(path: str | os.PathLike, cache_dir: str | None = None) -> str:
    """A path to the uncompressed bytes of ``path``, for readers that seek or map a file.

    ``path`` itself unless it is gzip; then its content decompressed once, chunk
    by chunk, into ``cache_dir`` (default: a new temporary directory). The copy's
    name carries the source's size and modification time, so an existing copy
    is reused only for the same file.

    Raises:
      DataError: as ``open_binary``, or a damaged gzip stream (nothing is left in
        ``cache_dir`` then).
    """
    if not _magic(path).startswith(GZIP_MAGIC):
        open_binary(path).close()  # names any other compression
        return str(path)
    name, stat = os.path.basename(path), os.stat(path)
    cache_dir = cache_dir or tempfile.mkdtemp(prefix="jaxdl-uncompressed-")
    target = os.path.join(cache_dir, f"{name.removesuffix('.gz')}-{stat.st_size}-{stat.st_mtime_ns}")
    if os.path.exists(target):
        return target
    os.makedirs(cache_dir, exist_ok=True)
    try:
        with gzip.open(path, "rb") as source, open(target + ".partial", "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    except (OSError, EOFError, zlib.error) as error:
        os.remove(target + ".partial")
        raise DataError(f"{path}: the gzip data is damaged or truncated ({error}); expected a "
                        "complete gzip file (re-copy or re-compress it)") from error
    os.replace(target + ".partial", target)
    return target
