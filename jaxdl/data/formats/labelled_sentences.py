"""Labelled sentence files as raw text: fastText lines or ``<label> <sentence>`` lines.

Two layouts, one example a line, blank lines skipped:

* ``fasttext``: ``__label__A [__label__B ...] text`` (the first label counts);
* ``label_first``: ``<label> <sentence>``, the first whitespace-separated field the
  label (the layout of the Kim 2014 CNN sets: SST-2, Subj, TREC, MR).

``config.data.format`` names one, or ``"auto"`` (default): a file whose first
non-blank line starts with ``__label__`` is fastText, any other ``label_first``.

A set with no test file (``config.data.test = ""``, e.g. Subj) is cut per class
by ``jaxdl.data.stdlib_corpus.split_labelled`` with ``config.data.test_fraction``
and ``config.data.split_seed``; the cut is recorded in the run's summary.
"""

from __future__ import annotations

import os

from ml_collections import ConfigDict

from jaxdl.data.formats.fasttext import parse_fasttext_line
from jaxdl.data.formats.text_files import read_text, split_lines
from jaxdl.data.stdlib_corpus import split_labelled
from jaxdl.errors import ConfigError, DataError

FORMATS = ("auto", "fasttext", "label_first")
TextSplit = tuple[list[str], list[str]]  # (sentences, labels)


def detect_format(text: str) -> str:
    """``"fasttext"`` when the first non-blank line starts with ``__label__``, else
    ``"label_first"``."""
    for line in split_lines(text):
        if line.strip():
            return "fasttext" if line.lstrip().startswith("__label__") else "label_first"
    return "label_first"


def read_labelled_text(path: str, fmt: str = "auto", *, encoding: str = "utf-8") -> TextSplit:
    """``(sentences, labels)`` of one file (labels as the strings the file writes).

    Raises:
      ConfigError: an unknown ``fmt``.
      DataError: a missing file, or no example (a line holding only a label is an
        empty sentence, as fastText reads one).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"config.data.format={fmt!r}; expected one of {FORMATS}")
    text = read_text(path, encoding=encoding)
    fmt = detect_format(text) if fmt == "auto" else fmt
    sentences, labels = [], []
    for number, line in enumerate(split_lines(text), start=1):
        if fmt == "fasttext":
            parsed = parse_fasttext_line(line, f"{path}:{number}")
            if parsed is not None:
                sentences.append(parsed[0])
                labels.append(parsed[1][0])
            continue
        fields = line.strip().split(None, 1)
        if not fields:
            continue
        # A label alone is an empty sentence, as in fastText files (Subj has one).
        labels.append(fields[0])
        sentences.append(fields[1] if len(fields) == 2 else "")
    if not any(sentences):
        raise DataError(f"{path}: no labelled sentence; expected '<label> <sentence>' or fastText "
                        "'__label__X text' lines")
    return sentences, labels


def load_sentence_splits(data: ConfigDict) -> tuple[TextSplit, TextSplit, dict]:
    """The train and test splits of ``data.train`` / ``data.test`` as raw text.

    Returns:
      ``(train, test, about)``: ``about`` says which files were read, in which
      format, and how a missing test file was cut (``test_fraction``, ``split_seed``).
    Raises:
      ConfigError: ``data.train`` is empty or not a file, ``data.test`` is given but
        not a file, or an unknown ``data.format``.
    """
    fmt, encoding = data.get("format", "auto"), data.get("encoding", "utf-8")
    if fmt not in FORMATS:
        raise ConfigError(f"config.data.format={fmt!r}; expected one of {FORMATS}")
    for key in ("train", "test"):
        path = data[key]
        if (key == "train" or path) and not os.path.isfile(path):
            raise ConfigError(f"config.data.{key}={path!r} is not a file; expected a labelled "
                              "sentence file (fastText or '<label> <sentence>' lines)"
                              + ("" if key == "test" else "; with no data.test it is cut by "
                                 "data.test_fraction and data.split_seed"))
    train = read_labelled_text(data.train, fmt, encoding=encoding)
    about = {"train": os.path.abspath(data.train), "format": fmt}
    if data.test:
        test = read_labelled_text(data.test, fmt, encoding=encoding)
        about["test"] = os.path.abspath(data.test)
        return train, test, about
    # split_labelled shuffles token lists; one-element lists carry each sentence whole.
    (tr, tr_y), (te, te_y) = split_labelled([[s] for s in train[0]], train[1],
                                            test_fraction=data.test_fraction, seed=data.split_seed)
    about.update(test="cut from train", test_fraction=data.test_fraction,
                 split_seed=data.split_seed)
    return ([s[0] for s in tr], tr_y), ([s[0] for s in te], te_y), about


__all__ = ["FORMATS", "TextSplit", "detect_format", "read_labelled_text", "load_sentence_splits"]
