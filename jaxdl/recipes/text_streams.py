"""The text experiments' file splits read one example at a time, for ``data.source="stream"``.

``streamed_classification`` (fastText files, ``text_classifier``) and
``streamed_tagging`` (CoNLL-U files, ``pos_tagger``) give what
``classification_data`` / ``load_tagged`` + ``tagging_dataset`` give on the arrays
path — the same vocabulary, classes or tags, and row for row the same examples —
without holding a split: the vocabularies are counted in passes over the files, a
line or sentence in memory at a time, and the splits are example readers
(``FastTextExamples`` / ``ConlluExamples``) for ``StreamingSource`` and
``StreamedSplit``.

Configuration read here (``config.data``): ``train``, ``test``, ``encoding``,
``lower``, ``min_count``, ``max_len``; ``max_word_len`` (tagging); ``workers`` and
``prefetch`` (the evaluation splits' reader threads).
"""

from __future__ import annotations

import collections
import dataclasses
import os

import numpy as np
from ml_collections import ConfigDict

from jaxdl.data.streamed_split import StreamedSplit
from jaxdl.data.examples import ExampleReader
from jaxdl.data.text import Vocab, tokenize
from jaxdl.data.text_checks import label_set
from jaxdl.data.formats.conllu import ConlluExamples, TaggingEncoding
from jaxdl.data.formats.fasttext import ClassificationEncoding, FastTextExamples
from jaxdl.errors import ConfigError


def reader_cache_dir(workdir: str | None) -> str | None:
    """Where gzipped input files are decompressed for reading by offset:
    ``WORKDIR/decompressed`` (None without a workdir: a temporary directory)."""
    return os.path.join(workdir, "decompressed") if workdir else None


def _require_files(data: ConfigDict, kind: str) -> None:
    for key in ("train", "test"):
        if not data[key]:
            raise ConfigError(f"config.data.source='stream' with config.data.{key} empty; "
                              f"expected a {kind} file (the embedded data is in memory "
                              "already: use data.source='arrays')")


def split_summary(reader: ExampleReader) -> dict:
    """``dataset_summary``'s entry of one split: ``{"examples", "tokens"}`` (real tokens,
    from each example's ``token_mask [T]``), counted in one pass."""
    tokens = sum(int(reader[i]["token_mask"].sum()) for i in range(len(reader)))
    return {"examples": len(reader), "tokens": tokens}


@dataclasses.dataclass(frozen=True)
class StreamedClassification:
    """A sentence-classification problem over two fastText files, streamed.

    Attributes:
      vocab, classes: as ``ClassificationData``'s.
      train: the encoded training lines (``{"tokens", "token_mask" [max_len], "y"}``).
      test: the encoded test lines as a ``StreamedSplit``.
      majority: the most frequent training label (ties: the first seen).
      majority_accuracy: the test accuracy of always answering ``majority``.
      summary: ``dataset_summary``'s ``{"train": {...}, "test": {...}}``.
    """

    vocab: Vocab
    classes: list
    train: FastTextExamples
    test: StreamedSplit
    majority: str
    majority_accuracy: float
    summary: dict


def streamed_classification(data: ConfigDict, cache_dir: str | None) -> StreamedClassification:
    """``classification_data`` of the fastText files ``data.train`` / ``data.test``, streamed.

    Raises:
      ConfigError: a file is not given.
      DataError: as ``read_fasttext``, or a test label absent from training.
    """
    _require_files(data, "fastText")
    options = dict(encoding=data.get("encoding", "utf-8"), cache_dir=cache_dir)
    train, test = (FastTextExamples(data[key], **options) for key in ("train", "test"))
    labels: collections.Counter = collections.Counter()

    def train_tokens():
        for i in range(len(train)):
            text, line_labels = train.text_and_labels(i)
            labels[line_labels[0]] += 1
            yield tokenize(text, lower=data.lower)

    vocab = Vocab.build(train_tokens(), min_count=data.min_count, source=data.train)
    classes = label_set(labels, (test.text_and_labels(i)[1][0] for i in range(len(test))),
                        train_source=data.train, test_source=data.test)
    encode = ClassificationEncoding(vocab, classes, max_len=data.max_len, lower=data.lower)
    train.encode = test.encode = encode
    majority, _ = labels.most_common(1)[0]
    hits = sum(test.text_and_labels(i)[1][0] == majority for i in range(len(test)))
    summary = {"train": split_summary(train), "test": split_summary(test)}  # checks test labels
    return StreamedClassification(
        vocab, classes, train, StreamedSplit(test, workers=data.workers, prefetch=data.prefetch),
        majority, hits / len(test), summary)


class OutOfVocabularyExamples:
    """A tagging split scored only at its out-of-vocabulary words: each example's
    ``target_mask [T]`` becomes ``with_target_mask(out_of_vocabulary_mask(...))``'s row."""

    def __init__(self, reader: ExampleReader, unk_id: int):
        self.reader, self.unk_id = reader, unk_id

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        example = dict(self.reader[index])
        mask = example["token_mask"]
        oov = ((example["tokens"] == self.unk_id) & (mask > 0)).astype(np.float32)
        example["target_mask"] = oov * mask
        return example


@dataclasses.dataclass(frozen=True)
class StreamedTagging:
    """A tagging problem over two CoNLL-U files, streamed.

    Attributes:
      vocab, tags, char_vocab: as the arrays path builds them (``char_vocab`` None
        without character features).
      train: the encoded training sentences (``tagging_dataset``'s rows).
      eval_data: ``{"test": StreamedSplit}``, plus ``"test_oov"`` when the test file
        has out-of-vocabulary words.
      oov_tokens: the test file's out-of-vocabulary words (within ``max_len``).
      summary: ``dataset_summary``'s ``{"train": {...}, "test": {...}}``.
    """

    vocab: Vocab
    tags: list
    char_vocab: Vocab | None
    train: ConlluExamples
    eval_data: dict
    oov_tokens: int
    summary: dict


def streamed_tagging(data: ConfigDict, cache_dir: str | None, *,
                     char_features: bool) -> StreamedTagging:
    """The arrays path of ``pos_tagger`` (vocabulary of lookup forms with ``min_count``,
    the training file's tags sorted (``label_set``), ``max_len`` 0 meaning the longest sentence of either
    file) over ``ConlluExamples`` of ``data.train`` / ``data.test``.

    Raises:
      ConfigError: a file is not given.
      DataError: as ``read_conllu`` (a bad row, no sentence with words).
    """
    _require_files(data, "CoNLL-U")
    options = dict(encoding=data.get("encoding", "utf-8"), cache_dir=cache_dir)
    train, test = (ConlluExamples(data[key], **options) for key in ("train", "test"))
    tags, longest = {"train": set(), "test": set()}, 0

    def sentences(reader, split):
        nonlocal longest
        for i in range(len(reader)):
            words = reader.words(i)
            tags[split].update(t for _, t in words)
            longest = max(longest, len(words))
            yield words

    vocab = Vocab.build(([w.lower() if data.lower else w for w, _ in s]
                         for s in sentences(train, "train")),
                        min_count=data.min_count, source=data.train)
    collections.deque(sentences(test, "test"), maxlen=0)  # the test file's tags and lengths
    char_vocab = (Vocab.build(list(w) for s in sentences(train, "train") for w, _ in s)
                  if char_features else None)
    tags = label_set(tags["train"], tags["test"], train_source=data.train,
                     test_source=data.test, kind="tag")  # training tags only
    train.encode = test.encode = TaggingEncoding(
        vocab, tags, max_len=data.max_len or longest, lower=data.lower, char_vocab=char_vocab,
        max_word_len=data.max_word_len)
    oov = OutOfVocabularyExamples(test, vocab.unk_id)
    oov_tokens = sum(int(oov[i]["target_mask"].sum()) for i in range(len(oov)))
    split = dict(workers=data.workers, prefetch=data.prefetch)
    eval_data = {"test": StreamedSplit(test, name="test", **split)}
    if oov_tokens > 0:
        eval_data["test_oov"] = StreamedSplit(oov, name="test_oov", **split)
    return StreamedTagging(vocab, tags, char_vocab, train, eval_data, oov_tokens,
                           {"train": split_summary(train), "test": split_summary(test)})
