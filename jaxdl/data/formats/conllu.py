"""CoNLL-U (universaldependencies.org/format.html): sentences of comment lines and
10-column token rows, each ended by a blank line.

``read_conllu`` reads a whole file into sentences of ``(FORM, UPOS)``;
``ConlluExamples(path, encode)`` is an example reader over the same file: one
pass checks every line as ``read_conllu_sentences`` does and keeps each
sentence's byte range, and example ``i`` reads, parses and encodes that range
(``TaggingEncoding`` gives ``tagging_dataset``'s row). Both parse rows with
``parse_conllu_row``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Callable, Sequence

import numpy as np

from jaxdl.data.formats.text_files import line_spans, read_text, refuse_empty, split_lines
from jaxdl.data.opener import uncompressed_path
from jaxdl.data.sequence_sets import tagging_dataset
from jaxdl.data.text import Vocab
from jaxdl.errors import DataError

CONLLU_COLUMNS = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
# CoNLL-U IDs: a word index (1, 2, ...), a multiword token range (1-2) or an empty node (8.1).
_WORD_ID = re.compile(r"[1-9][0-9]*")
_RANGE_ID = re.compile(r"[1-9][0-9]*-[1-9][0-9]*")
_EMPTY_NODE_ID = re.compile(r"(0|[1-9][0-9]*)\.[1-9][0-9]*")


@dataclasses.dataclass
class ConlluSentence:
    """One CoNLL-U sentence as written: comment lines and all 10-column rows.

    Attributes:
      comments: the comment lines, each with its leading `#`.
      rows: every token row in file order, as 10 strings (ID ... MISC),
        including multiword-token ranges (`1-2`) and empty nodes (`8.1`).
    """

    comments: list[str]
    rows: list[tuple[str, ...]]

    @property
    def words(self) -> list[tuple[str, str]]:
        """`(FORM, UPOS)` of the syntactic words: ranges and empty nodes left out."""
        return [(row[1], row[3]) for row in self.rows if _WORD_ID.fullmatch(row[0])]


def read_conllu_sentences(path: str | os.PathLike, *, encoding: str = "utf-8") -> list[ConlluSentence]:
    """Reads a CoNLL-U file keeping everything `write_conllu` needs to re-write it.

    Follows universaldependencies.org/format.html: sentences are comment lines
    (`#...`) then token rows of 10 tab-separated columns, each sentence ended by
    a blank line (a missing final blank line is tolerated).

    Raises:
      DataError: `file:line` of a row with the wrong number of columns or a bad ID.
    """
    sentences: list[ConlluSentence] = []
    comments: list[str] = []
    rows: list[tuple[str, ...]] = []
    for number, line in enumerate(split_lines(read_text(path, encoding=encoding)), start=1):
        if line.strip() == "":
            if rows:
                sentences.append(ConlluSentence(comments, rows))
            elif comments:
                raise DataError(f"{path}:{number}: blank line ends a sentence that has comments but no token rows")
            comments, rows = [], []
        elif line.startswith("#") and not rows:
            comments.append(line)
        elif line.startswith("#"):
            raise DataError(f"{path}:{number}: comment line after token rows; comments must precede a sentence's rows")
        else:
            rows.append(parse_conllu_row(line, f"{path}:{number}"))
    if rows:
        sentences.append(ConlluSentence(comments, rows))
    return sentences


def read_conllu(path: str | os.PathLike, *, encoding: str = "utf-8") -> list[list[tuple[str, str]]]:
    """Reads a CoNLL-U file for tagging.

    Returns:
      One list per sentence of `(FORM, UPOS)` for each syntactic word;
      multiword-token range rows (their words are kept) and empty nodes are skipped.

    Raises:
      DataError: the file holds no sentence with a word.
    """
    sentences = [sentence.words for sentence in read_conllu_sentences(path, encoding=encoding)]
    if not any(sentences):
        refuse_empty(path, "no CoNLL-U sentence with a word")
    return sentences


def write_conllu(
    path: str | os.PathLike,
    sentences: list[ConlluSentence] | list[list[tuple[str, str]]],
    *,
    encoding: str = "utf-8",
) -> None:
    """Writes CoNLL-U: each sentence's comments, rows and a terminating blank line.

    Args:
      path: output file.
      sentences: `ConlluSentence`s (re-written exactly as read), or lists of
        `(FORM, UPOS)` (IDs numbered from 1, other columns `_`).
      encoding: output encoding.
    """
    lines = []
    for sentence in sentences:
        if not isinstance(sentence, ConlluSentence):
            rows = [(str(i), form, "_", upos, "_", "_", "_", "_", "_", "_") for i, (form, upos) in enumerate(sentence, 1)]
            sentence = ConlluSentence([], rows)
        lines.extend(sentence.comments)
        lines.extend("\t".join(row) for row in sentence.rows)
        lines.append("")
    with open(path, "w", encoding=encoding, newline="\n") as handle:
        handle.write("".join(line + "\n" for line in lines))


def parse_conllu_row(line: str, where: str) -> tuple[str, ...]:
    """The 10 columns of one token row; ``where`` (``file:line``) is named in errors."""
    columns = line.split("\t")
    if len(columns) != len(CONLLU_COLUMNS):
        raise DataError(
            f"{where}: found {len(columns)} tab-separated columns, expected {len(CONLLU_COLUMNS)} "
            f"({' '.join(CONLLU_COLUMNS)}); line starts {line[:40]!r}"
        )
    token_id = columns[0]
    if not (_WORD_ID.fullmatch(token_id) or _RANGE_ID.fullmatch(token_id) or _EMPTY_NODE_ID.fullmatch(token_id)):
        raise DataError(f"{where}: ID {token_id!r} is not a word index (3), a range (1-2) or an empty node (8.1)")
    if columns[1] == "":
        raise DataError(f"{where}: FORM is empty (use '_' for an unknown form)")
    return tuple(columns)



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


class ConlluExamples:
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
                    parse_conllu_row(line, f"{self.path}:{number}")
                    state["rows"] = True
                state["end"] = offset + length
            close()
        if not spans:
            refuse_empty(path, "no CoNLL-U sentence with a word")
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
        rows = [parse_conllu_row(line, f"{self.path}:{number + i}")
                for i, line in enumerate(split_lines(self._decode(raw, number)))
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
