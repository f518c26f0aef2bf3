"""Labelled text files read one example at a time, for ``StreamingSource``.

``FastTextRecords(path, encoding)`` is a ``RecordSource`` over a fastText
supervised file: one pass (a line in memory at a time) checks every line as
``read_fasttext`` does and keeps only each labelled line's byte offset and
length; example ``i`` then reads, parses and encodes that one line.
``ClassificationEncoding`` turns ``(text, labels)`` into the row
``classification_dataset`` builds for it, so a streamed split gives the same
examples as ``read_fasttext`` + ``classification_dataset``. ``ConlluRecords`` and
``TaggingEncoding`` do the same for CoNLL-U sentences and ``tagging_dataset``.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator, Sequence

import numpy as np

from jaxdl.data.opener import uncompressed_path
from jaxdl.data.text import Vocab, tokenize
from jaxdl.data.sequence_sets import tagging_dataset
from jaxdl.data.text_readers import (ConlluSentence, _lines, _parse_conllu_row, _refuse_empty,
                                     parse_fasttext_line)
from jaxdl.errors import DataError

Encode = Callable[[str, list[str]], dict]


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


class FastTextRecords:
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
            _refuse_empty(path, "no labelled line")
        if not any_text:
            _refuse_empty(path, f"all {len(spans)} labelled lines have labels but no text")
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


class TaggingEncoding:
    """``[(form, upos), ...] -> {"tokens", "token_mask", "y", "target_mask" [max_len] (+ chars)}``:
    ``tagging_dataset``'s row of one sentence (it is built by that very function)."""

    def __init__(self, vocab: Vocab, tags: Sequence[str], *, max_len: int, lower: bool = True,
                 char_vocab: Vocab | None = None, max_word_len: int = 20):
        self.vocab, self.tags, self.max_len, self.lower = vocab, list(tags), max_len, lower
        self.char_vocab, self.max_word_len = char_vocab, max_word_len

    def __call__(self, words: list[tuple[str, str]]) -> dict[str, np.ndarray]:
        row = tagging_dataset([words], self.vocab, self.tags, max_len=self.max_len, name="stream",
                              lower=self.lower, char_vocab=self.char_vocab,
                              max_word_len=self.max_word_len)
        return {k: v[0] for k, v in row.arrays.items()}


class ConlluRecords:
    """The sentences with words of a CoNLL-U file, read and encoded per example.

    One pass checks every line as ``read_conllu_sentences`` does and keeps each
    sentence's byte range; example ``i`` reads and parses that range. The
    sentences are ``load_tagged``'s (``read_conllu`` without word-less ones).

    Args:
      path: the file, plain or gzip (decompressed once into ``cache_dir``).
      encode: ``words -> example``, e.g. ``TaggingEncoding``; None gives
        ``{"line": int64}`` (the sentence's first line).
      encoding: the file's text encoding.
    Raises:
      DataError: as ``read_conllu`` (a bad row, a misplaced comment, no sentence
        with a word), before any example is read.
    """

    def __init__(self, path: str | os.PathLike, encode: Callable | None = None, *,
                 encoding: str = "utf-8", cache_dir: str | None = None):
        self.path, self.encode, self.encoding = str(path), encode, encoding
        self._raw = uncompressed_path(path, cache_dir)
        spans: list[tuple[int, int, int]] = []  # first line, offset, end offset
        state = {"first": None, "rows": False, "end": 0}

        def close():
            if state["rows"] and self._words(*state["first"], state["end"]):
                spans.append((state["first"][0], state["first"][1], state["end"]))
            state.update(first=None, rows=False)

        with open(self._raw, "rb") as handle:
            for number, offset, length in line_spans(self._raw, encoding):
                handle.seek(offset)
                line = self._decode(handle.read(length), number)
                if line.strip() == "":
                    if not state["rows"] and state["first"] is not None:
                        raise DataError(f"{self.path}:{number}: blank line ends a sentence that "
                                        "has comments but no token rows")
                    close()
                    continue
                if line.startswith("#") and state["rows"]:
                    raise DataError(f"{self.path}:{number}: comment line after token rows; "
                                    "comments must precede a sentence's rows")
                if state["first"] is None:
                    state["first"] = (number, offset)
                if not line.startswith("#"):
                    _parse_conllu_row(line, f"{self.path}:{number}")
                    state["rows"] = True
                state["end"] = offset + length
            close()
        if not spans:
            _refuse_empty(path, "no CoNLL-U sentence with a word")
        self.spans = np.asarray(spans, np.int64)  # [N, 3]

    def _decode(self, raw: bytes, number: int) -> str:
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError as err:
            raise DataError(f"{self.path}:{number}: byte {err.object[err.start:err.start + 1]!r} "
                            f"is not valid {self.encoding}; if the file uses another encoding, "
                            "pass it, e.g. encoding='latin-1'") from err

    def _words(self, number: int, offset: int, end: int) -> list[tuple[str, str]]:
        fd = os.open(self._raw, os.O_RDONLY)
        try:
            raw = os.pread(fd, end - offset, offset)
        finally:
            os.close(fd)
        rows = [_parse_conllu_row(line, f"{self.path}:{number + i}")
                for i, line in enumerate(_lines(self._decode(raw, number)))
                if not line.startswith("#")]
        return ConlluSentence([], rows).words

    def __len__(self) -> int:
        return len(self.spans)

    def words(self, index: int) -> list[tuple[str, str]]:
        """``(FORM, UPOS)`` of the syntactic words of sentence ``index``."""
        return self._words(*(int(v) for v in self.spans[index]))

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if self.encode is None:
            return {"line": np.int64(self.spans[index, 0])}
        return self.encode(self.words(index))
