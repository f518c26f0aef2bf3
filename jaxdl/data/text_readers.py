"""Readers for the text formats people have: plain corpora, CoNLL-U, fastText labels.

Every reader takes `encoding="utf-8"`, reads gzip-compressed files directly
(recognised by their magic bytes, whatever the name) and accepts LF, CRLF and
CR-only line ends. Text that does not decode raises `DataError` naming the
file, line and byte offset and saying which argument to pass; a malformed
record raises `DataError` with `file:line`; a file with nothing to read in it
raises `DataError` naming it.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re

from jaxdl.data.opener import read_bytes
from jaxdl.data.text import tokenize
from jaxdl.errors import DataError

CONLLU_COLUMNS = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
# CoNLL-U IDs: a word index (1, 2, ...), a multiword token range (1-2) or an empty node (8.1).
_WORD_ID = re.compile(r"[1-9][0-9]*")
_RANGE_ID = re.compile(r"[1-9][0-9]*-[1-9][0-9]*")
_EMPTY_NODE_ID = re.compile(r"(0|[1-9][0-9]*)\.[1-9][0-9]*")
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


def _lines(text: str) -> list[str]:
    # Universal newlines (LF, CRLF, CR alone, as old Mac files have), but not
    # str.splitlines, which would also split on U+2028, U+0085 etc. inside words.
    lines = _NEWLINE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _refuse_empty(path: str | os.PathLike, what: str) -> None:
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
        for line in _lines(read_text(file, encoding=encoding)):
            tokens = tokenize(line, lower=lower)
            if tokens:
                sentences.append(tokens)
    if not sentences:
        _refuse_empty(path, "no line holds a token")
    return sentences


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


def _parse_conllu_row(line: str, where: str) -> tuple[str, ...]:
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
    for number, line in enumerate(_lines(read_text(path, encoding=encoding)), start=1):
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
            rows.append(_parse_conllu_row(line, f"{path}:{number}"))
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
        _refuse_empty(path, "no CoNLL-U sentence with a word")
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
    for number, line in enumerate(_lines(read_text(path, encoding=encoding)), start=1):
        parsed = parse_fasttext_line(line, f"{path}:{number}", label_prefix)
        if parsed is not None:
            texts.append(parsed[0])
            labels.append(parsed[1])
    if not texts:
        _refuse_empty(path, "no labelled line")
    if not any(texts):
        _refuse_empty(path, f"all {len(texts)} labelled lines have labels but no text")
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
