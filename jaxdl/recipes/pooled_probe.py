"""A linear probe on pooled sentence features: mean or SIF pooling of word vectors.

A sentence becomes one fixed vector, and a logistic regression is trained on
the budget's labelled examples (``logistic_regression_run``: the LSTM runs'
indices, ``C`` by the few-label rule). The features are any
``features(sentences) -> [N, D]`` callable, so other encoders (a language
model's final or pooled states) plug in beside the two poolings here:

* **mean**: the average of the sentence's in-vocabulary word vectors;
* **SIF** (Arora, Liang and Ma 2017, "A simple but tough-to-beat baseline for
  sentence embeddings"): the average weighted by ``a / (a + p(w))``, ``p(w)``
  the word's unigram probability in the pretraining corpus, then the projection
  on the first singular vector of a reference set's averages removed. The
  reference is the labelled pool's sentences (text only, no labels), never the
  test split.

A sentence with no in-vocabulary word gets the zero vector. The probe
standardises the features with the training rows' mean and variance.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from ml_collections import ConfigDict

from jaxdl.errors import ConfigError
from jaxdl.evaluation.word2vec_format import load_word2vec_format
from jaxdl.evaluation.word_vectors import WordVectors
from jaxdl.recipes.logistic_regression_run import logistic_regression_run

Features = Callable[[Sequence[Sequence[str]]], np.ndarray]
SIF_A = 1e-3  # Arora et al.'s recommended weight parameter (their range: 1e-4 to 1e-3)
POOLINGS = {"w2v_mean_probe": "mean", "w2v_sif_probe": "sif"}  # mode -> pooling


def weighted_average(vectors: WordVectors, sentences: Sequence[Sequence[str]],
                     weights: Mapping[str, float] | None = None) -> np.ndarray:
    """float64 ``[N, D]``: each sentence's average of its in-vocabulary word vectors,
    weighted by ``weights[word]`` (missing: 1) and divided by the number of such words."""
    out = np.zeros((len(sentences), vectors.dim), np.float64)
    for i, sentence in enumerate(sentences):
        rows = [vectors.index[w] for w in sentence if w in vectors.index]
        if rows:
            w = np.array([1.0 if weights is None else weights.get(vectors.words[r], 1.0)
                          for r in rows])
            out[i] = (w[:, None] * vectors.vectors[rows].astype(np.float64)).sum(0) / len(rows)
    return out


def mean_features(vectors: WordVectors) -> Features:
    """Mean pooling of ``vectors`` as a ``features(sentences) -> [N, D]`` callable."""
    return lambda sentences: weighted_average(vectors, sentences)


def sif_weights(counts: Mapping[str, int], a: float = SIF_A) -> dict[str, float]:
    """``{word: a / (a + p(word))}``, ``p`` the word's share of ``counts``' total."""
    total = float(sum(counts.values()))
    if total <= 0:
        raise ConfigError("sif_weights: the word counts are empty; expected the pretraining "
                          "corpus's unigram counts")
    return {w: a / (a + c / total) for w, c in counts.items()}


def first_component(x: np.ndarray) -> np.ndarray:
    """The first right singular vector ``[D]`` of ``x [N, D]`` (not centred, as in SIF)."""
    return np.linalg.svd(np.asarray(x, np.float64), full_matrices=False)[2][0]


def sif_features(vectors: WordVectors, counts: Mapping[str, int],
                 reference: Sequence[Sequence[str]], a: float = SIF_A) -> Features:
    """SIF pooling as a ``features(sentences) -> [N, D]`` callable.

    Args:
      vectors: the word vectors.
      counts: unigram counts of the corpus the vectors were trained on.
      reference: sentences whose weighted averages give the removed component.
      a: the weight parameter.
    """
    weights = sif_weights(counts, a)
    u = first_component(weighted_average(vectors, reference, weights))

    def features(sentences: Sequence[Sequence[str]]) -> np.ndarray:
        x = weighted_average(vectors, sentences, weights)
        return x - np.outer(x @ u, u)
    return features


def word_vector_features(mode: str, vectors: WordVectors, counts: Mapping[str, int],
                         reference: Sequence[Sequence[str]]) -> Features:
    """The pooling of ``POOLINGS[mode]`` over ``vectors``.

    Raises:
      ConfigError: ``mode`` is not one of ``POOLINGS``.
    """
    if mode not in POOLINGS:
        raise ConfigError(f"pooled probe mode {mode!r}; expected one of {sorted(POOLINGS)}")
    if POOLINGS[mode] == "mean":
        return mean_features(vectors)
    return sif_features(vectors, counts, reference)


def pooled_probe_run(features: Features, sentences: Sequence[Sequence[str]], labels: np.ndarray,
                     test_sentences: Sequence[Sequence[str]], test_labels: np.ndarray,
                     config: ConfigDict, workdir: str | None, **extra: Any) -> dict:
    """One budget and seed of a probe on ``features`` (mode ``config.mode``).

    Args:
      features: ``(sentences) -> float [N, D]``.
      sentences, labels: the labelled pool (token lists, int ``[N]``) in the order of
        the LSTM runs' dataset.
      test_sentences, test_labels: the test split.
      config, workdir, extra: as for ``logistic_regression_run``.
    Returns:
      The sub-run's summary (keys as ``transfer_experiment.fit_downstream``'s).
    """
    from sklearn.preprocessing import StandardScaler

    def featurize(train, val, test):
        x_train = features(train)
        scaler = StandardScaler().fit(x_train)
        x_val = features(val) if len(val) else np.zeros((0, x_train.shape[1]))
        return tuple(scaler.transform(x) if len(x) else x for x in (x_train, x_val, features(test)))

    return logistic_regression_run(featurize, sentences, labels, test_sentences, test_labels,
                                   config, workdir, **extra)


def word_vector_probe_run(vectors_path: str, counts: Mapping[str, int],
                          sentences: Sequence[Sequence[str]], labels: np.ndarray,
                          test_sentences: Sequence[Sequence[str]], test_labels: np.ndarray,
                          config: ConfigDict, workdir: str | None) -> dict:
    """``pooled_probe_run`` with ``config.mode``'s pooling (``POOLINGS``) of a word2vec file.

    Args:
      vectors_path: word vectors in word2vec text or binary format.
      counts: unigram counts of their training corpus (SIF's ``p(w)``).
      sentences: the labelled pool (also SIF's reference set); the rest as
        ``pooled_probe_run``.
    """
    features = word_vector_features(config.mode, load_word2vec_format(vectors_path), counts,
                                    sentences)
    return pooled_probe_run(features, sentences, labels, test_sentences, test_labels, config,
                            workdir, vectors=os.path.basename(vectors_path), pooling=POOLINGS[config.mode])


__all__ = ["word_vector_probe_run", "Features", "SIF_A", "POOLINGS", "weighted_average", "mean_features", "sif_weights",
           "first_component", "sif_features", "word_vector_features", "pooled_probe_run"]
