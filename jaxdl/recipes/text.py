"""What the text experiments share: their splits, vocabularies, datasets and run outputs.

The sentence classifier, the language model, the part-of-speech taggers and the
word-vector transfer experiment (``experiments/text_classifier.py``,
``language_model.py``, ``pos_tagger*.py``, ``transfer_text.py``) read their data
through these functions, so a config key such as ``config.data.corpus`` or
``config.data.train`` means the same thing in each.

Configuration read here (``config.data``): ``train`` / ``test`` (fastText or
CoNLL-U files; "" for the embedded data where there is one), ``corpus`` (a text
file or directory; "" for the embedded English corpus), ``lower``, ``min_count``,
``max_len``, ``max_per_class``, ``test_fraction`` and ``split_seed``.
"""

from __future__ import annotations

import dataclasses
import os

import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.stdlib_corpus import embedded_corpus, embedded_labelled_sentences, split_labelled
from jaxdl.data.sequence_sets import classification_dataset
from jaxdl.data.text import PAD, Vocab, tokenize
from jaxdl.data.text_checks import label_set
from jaxdl.data.formats.conllu import read_conllu
from jaxdl.data.formats.fasttext import read_fasttext
from jaxdl.data.formats.plain_text import read_corpus
from jaxdl.errors import ConfigError, DataError
from jaxdl.evaluation.plots import plot_learning_curves, plots_dir
from jaxdl.evaluation.word2vec_format import load_word2vec_format
from jaxdl.pretrained.word_vectors_file import embedding_matrix_from_file

Split = tuple[list, list]  # (token lists, labels)


def load_labelled_splits(data: ConfigDict) -> tuple[Split, Split]:
    """``((train_sentences, train_labels), (test_sentences, test_labels))``.

    From the fastText files ``data.train`` and ``data.test`` (a line with several
    labels counts as its first), or with neither the embedded labelled sentences
    split per class (``max_per_class``, ``test_fraction``, ``split_seed``).

    Raises:
      ConfigError: only one of the two files is given.
    """
    files = (data.train, data.test)
    if any(files) and not all(files):
        raise ConfigError(f"config.data.train={files[0]!r}, config.data.test={files[1]!r}: give "
                          "both fastText files, or neither for the embedded labelled sentences")
    if not any(files):
        sentences, labels = embedded_labelled_sentences(max_per_class=data.max_per_class)
        return split_labelled(sentences, labels, test_fraction=data.test_fraction,
                              seed=data.split_seed)
    splits = []
    for path in files:
        texts, labels = read_fasttext(path, encoding=data.get("encoding", "utf-8"))
        splits.append(([tokenize(t, lower=data.lower) for t in texts], [ls[0] for ls in labels]))
    return splits[0], splits[1]


def load_corpus(data: ConfigDict) -> list[list[str]]:
    """Token lists of ``data.corpus`` (lower-cased if ``data.lower``), or the embedded corpus."""
    if data.corpus:
        return read_corpus(data.corpus, lower=data.lower, encoding=data.get("encoding", "utf-8"))
    return embedded_corpus()  # already lower-cased


def corpus_without(data: ConfigDict, held_out) -> list[list[str]]:
    """``load_corpus(data)`` without any sentence of ``held_out`` (token lists): a
    pretraining corpus that holds no sentence of the classifier's test split."""
    held_out = {tuple(s) for s in held_out}
    return [s for s in load_corpus(data) if tuple(s) not in held_out]


def load_tagged(data: ConfigDict) -> tuple[list, list]:
    """``(train_sentences, test_sentences)`` of the CoNLL-U files ``data.train`` / ``data.test``,
    each sentence a list of ``(form, upos)``.

    Raises:
      ConfigError: a file is not given (no treebank ships with Python).
      DataError: a file has no sentence with words.
    """
    for key in ("train", "test"):
        if not data[key]:
            raise ConfigError(f"config.data.{key} is empty; expected a CoNLL-U file, e.g. "
                              f"--config.data.{key}=en_ewt-ud-{key}.conllu (no treebank ships "
                              "with Python)")
    splits = []
    for key in ("train", "test"):
        sentences = [s for s in read_conllu(data[key], encoding=data.get("encoding", "utf-8")) if s]
        if not sentences:
            raise DataError(f"{data[key]}: no sentences with words (config.data.{key})")
        splits.append(sentences)
    return splits[0], splits[1]


@dataclasses.dataclass(frozen=True)
class ClassificationData:
    """A sentence-classification problem, encoded.

    Attributes:
      vocab: words of the training sentences seen ``min_count`` times (others ``<unk>``).
      classes: the sorted training labels; label ``classes[i]`` is class ``i``.
      train, test: ``classification_dataset``s (``tokens``/``token_mask`` ``[N, max_len]``, ``y`` ``[N]``).
    """

    vocab: Vocab
    classes: list
    train: ArrayDataset
    test: ArrayDataset


def classification_data(data: ConfigDict, train_split: Split, test_split: Split
                        ) -> ClassificationData:
    """The vocabulary, classes and datasets of ``load_labelled_splits``' output."""
    classes = label_set(train_split[1], test_split[1], train_source=data.train,
                        test_source=data.test)  # training labels only: the model's shape
    vocab = Vocab.build(train_split[0], min_count=data.min_count, source=data.train)
    train, test = (classification_dataset(*split, vocab, classes, max_len=data.max_len, name=name)
                   for split, name in ((train_split, "train"), (test_split, "test")))
    return ClassificationData(vocab, classes, train, test)


def save_text_run(workdir: str | None, result, vocab: Vocab, *, metric: str = "loss") -> None:
    """``workdir/vocab.json`` and ``plots/loss.png`` (the curve of ``metric`` per split,
    from ``result.history``); nothing without a workdir."""
    if workdir:
        vocab.save(os.path.join(workdir, "vocab.json"))
        plot_learning_curves(result.history, os.path.join(plots_dir(workdir), "loss.png"),
                             metric=metric)


def set_embedding(model, vocab: Vocab, vectors_path: str) -> dict:
    """Copy word vectors (word2vec text format) into ``model.embed`` for the words they cover.

    Args:
      model: has ``embed.embedding`` ``[len(vocab), D]``.
      vocab: the model's vocabulary.
      vectors_path: a word2vec text file of ``D``-dimensional vectors.
    Returns:
      ``{"covered": n, "vocab_size": V}`` (uncovered rows keep their random init).
    Raises:
      ConfigError: the vectors' size differs from ``model.embed``'s.
    """
    vectors = load_word2vec_format(vectors_path)
    table = np.array(model.embed.embedding[...])  # a writable host copy
    if vectors.vectors.shape[1] != table.shape[1]:
        raise ConfigError(f"word vectors in {vectors_path} have {vectors.vectors.shape[1]} "
                          f"dimensions; expected config.model.embed_dim={table.shape[1]}")
    rows = [(i, vectors.index[t]) for i, t in enumerate(vocab.tokens) if t in vectors.index]
    if rows:
        ours, theirs = map(np.asarray, zip(*rows))
        table[ours] = vectors.vectors[theirs]
    model.embed.embedding[...] = jnp.asarray(table)
    return {"covered": len(rows), "vocab_size": len(vocab)}


def embeddings_from_file(model, vocab: Vocab, config) -> dict | None:
    """Fill ``model.embed`` from ``config.transfer.embeddings_from`` (if set) for ``vocab``.

    Rows of words the file lacks are drawn at random (the scale is in the report),
    ``<pad>``'s row is zeros. On a resumed run the checkpoint's table wins: `fit`
    restores it after this.

    Returns:
      None when no file is set, else the report of
      `jaxdl.pretrained.word_vectors_file.embedding_matrix_from_file` (in-vocabulary
      share, random rows and their scale, ...).
    Raises:
      ConfigError: the file's dimension differs from ``model.embed``'s (both named).
    """
    path = config.transfer.get("embeddings_from", "")
    if not path:
        return None
    dim = model.embed.embedding.shape[1]
    table, report = embedding_matrix_from_file(
        path, vocab.tokens, dim, seed=config.seed, zero_words=(PAD,),
        encoding=config.data.get("encoding", "utf-8"))
    model.embed.embedding[...] = jnp.asarray(table)
    return report


__all__ = ["embeddings_from_file", "load_labelled_splits", "load_corpus", "load_tagged", "ClassificationData",
           "classification_data", "save_text_run", "set_embedding"]
