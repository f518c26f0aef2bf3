"""The fastText supervised format: ``__label__A [__label__B ...] text ...`` per line.

``read_fasttext`` reads a whole file into ``(texts, labels)``.
``FastTextExamples(path, encode)`` is an example reader over the same file: one
pass (a line in memory at a time) checks every line as ``read_fasttext`` does and
keeps only each labelled line's byte offset and length; example ``i`` then reads,
parses and encodes that one line. ``ClassificationEncoding`` turns
``(text, labels)`` into the row ``classification_dataset`` builds for it, so a
streamed split gives the same examples as ``read_fasttext`` +
``classification_dataset``. Both parse a line with ``parse_fasttext_line``.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from jaxdl.data.formats.text_files import line_spans, read_text, refuse_empty, split_lines
from jaxdl.data.opener import uncompressed_path
from jaxdl.data.text import Vocab, tokenize
from jaxdl.errors import DataError

Encode = Callable[[str, list[str]], dict]


def read_fasttext(
    path: str | os.PathLike, *, label_prefix: str = "__label__", encoding: str = "utf-8"
) -> tuple[list[str], list[list[str]]]:
    """Reads fastText supervised-format lines: `__label__A [__label__B ...] text ...`.

    As in fastText, a line is split on whitespace and every word starting with
    `label_prefix` is a label (conventionally they come first); the other words,
    joined by single spaces, are the text. Blank lines are skipped.

    Args:
      path: the labelled file.
      label_prefix: the label marker (fastText's `-label` option).
      encoding: the file's text encoding.

    Returns:
      `(texts, labels)`: texts[i] a string, labels[i] its labels without the prefix.

    Raises:
      DataError: `file:line` of a non-blank line without any label; a file with
        no labelled line, or with labels but no text on any line.
    """
    texts, labels = [], []
    for number, line in enumerate(split_lines(read_text(path, encoding=encoding)), start=1):
        parsed = parse_fasttext_line(line, f"{path}:{number}", label_prefix)
        if parsed is not None:
            texts.append(parsed[0])
            labels.append(parsed[1])
    if not texts:
        refuse_empty(path, "no labelled line")
    if not any(texts):
        refuse_empty(path, f"all {len(texts)} labelled lines have labels but no text")
    return texts, labels


def parse_fasttext_line(line: str, where: str, label_prefix: str = "__label__"
                        ) -> tuple[str, list[str]] | None:
    """``(text, labels)`` of one fastText line, or None for a blank one (see ``read_fasttext``).

    Raises:
      DataError: ``where`` (``file:line``) when the line has no label.
    """
    words = line.split()
    if not words:
        return None
    line_labels = [w[len(label_prefix):] for w in words if w.startswith(label_prefix)]
    if not line_labels or any(label == "" for label in line_labels):
        raise DataError(
            f"{where}: expected one or more labels like '{label_prefix}X' before the text; "
            f"line starts {line[:40]!r} (set label_prefix= if the file uses another marker)"
        )
    return " ".join(w for w in words if not w.startswith(label_prefix)), line_labels

class ClassificationEncoding:
    """``(text, labels) -> {"tokens", "token_mask" [max_len], "y" int32}``: one row of
    ``classification_dataset`` (tokenised with ``lower``; the first label counts)."""

    def __init__(self, vocab: Vocab, classes: Sequence[str], *, max_len: int, lower: bool = True):
        self.vocab, self.max_len, self.lower = vocab, int(max_len), lower
        self.index = {name: i for i, name in enumerate(classes)}

    def __call__(self, text: str, labels: list[str]) -> dict[str, np.ndarray]:
        if labels[0] not in self.index:
            raise DataError(f"label {labels[0]!r} is not among the {len(self.index)} training "
                            f"classes {list(self.index)[:10]}; every evaluated label must "
                            "occur in training")
        ids = self.vocab.encode(tokenize(text, lower=self.lower)) if text else []
        if not len(ids):
            ids = np.asarray([self.vocab.unk_id], np.int32)
        length = min(len(ids), self.max_len)
        tokens = np.full(self.max_len, self.vocab.pad_id, np.int32)
        tokens[:length] = ids[:length]
        mask = (np.arange(self.max_len) < length).astype(np.float32)
        return {"tokens": tokens, "token_mask": mask, "y": np.int32(self.index[labels[0]])}


class FastTextExamples:
    """The labelled lines of a fastText file, read and encoded per example.

    Args:
      path: the file, plain or gzip (a gzip file is decompressed once into
        ``cache_dir`` so that lines can be read by offset).
      encode: ``(text, labels) -> example``, e.g. ``ClassificationEncoding``;
        None gives ``{"line": int64}`` (the line number) for inspection.
      label_prefix, encoding: as ``read_fasttext``.
      cache_dir: where a gzip file is decompressed (default a temporary directory).
    Raises:
      DataError: as ``read_fasttext`` (a line without a label, an empty file), before
        any example is read.
    """

    def __init__(self, path: str | os.PathLike, encode: Encode | None = None, *,
                 label_prefix: str = "__label__", encoding: str = "utf-8",
                 cache_dir: str | None = None):
        self.path, self.encode = str(path), encode
        self.label_prefix, self.encoding = label_prefix, encoding
        self._raw = uncompressed_path(path, cache_dir)
        spans, any_text = [], False
        with open(self._raw, "rb") as handle:
            for number, offset, length in line_spans(self._raw, encoding):
                handle.seek(offset)
                parsed = self._parse(handle.read(length), number)
                if parsed is not None:
                    spans.append((number, offset, length))
                    any_text = any_text or bool(parsed[0])
        if not spans:
            refuse_empty(path, "no labelled line")
        if not any_text:
            refuse_empty(path, f"all {len(spans)} labelled lines have labels but no text")
        self.spans = np.asarray(spans, np.int64)  # [N, 3]: line, offset, length

    def _parse(self, raw: bytes, number: int) -> tuple[str, list[str]] | None:
        where = f"{self.path}:{number}"
        try:
            line = raw.decode(self.encoding)
        except UnicodeDecodeError as err:
            raise DataError(f"{where}: byte {err.object[err.start:err.start + 1]!r} is not "
                            f"valid {self.encoding}; if the file uses another encoding, pass "
                            "it, e.g. encoding='latin-1'") from err
        return parse_fasttext_line(line, where, self.label_prefix)

    def __len__(self) -> int:
        return len(self.spans)

    def text_and_labels(self, index: int) -> tuple[str, list[str]]:
        """``(text, labels)`` of labelled line ``index``, as ``read_fasttext`` returns them."""
        number, offset, length = (int(v) for v in self.spans[index])
        fd = os.open(self._raw, os.O_RDONLY)
        try:
            raw = os.pread(fd, length, offset)  # no shared file position: thread-safe
        finally:
            os.close(fd)
        return self._parse(raw, number)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if self.encode is None:
            return {"line": np.int64(self.spans[index, 0])}
        return self.encode(*self.text_and_labels(index))
