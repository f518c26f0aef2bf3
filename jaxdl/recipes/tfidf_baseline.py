"""TF-IDF + logistic regression: the baseline a pretrained sentence classifier must beat.

Features are TF-IDF weights of the unigrams and bigrams of each token list
(sublinear term frequency, L2-normalised rows), the vocabulary and document
frequencies fitted on the budget's labelled training examples only. The
classifier is ``logistic_regression_run``'s: the LSTM runs' labelled examples,
``C`` chosen by the few-label rule's held-out share (or fixed without it).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from ml_collections import ConfigDict

from jaxdl.recipes.logistic_regression_run import logistic_regression_run

NGRAMS = (1, 2)


def ngrams(tokens: Sequence[str], orders: tuple[int, int] = NGRAMS) -> list[str]:
    """The n-grams of ``tokens`` for n in ``orders[0]..orders[1]``, as space-joined strings."""
    return [" ".join(tokens[i:i + n]) for n in range(orders[0], orders[1] + 1)
            for i in range(len(tokens) - n + 1)]


def tfidf_features(train: Sequence[Sequence[str]], *others: Sequence[Sequence[str]]) -> tuple:
    """TF-IDF matrices (sparse ``[n, V]``) of token lists, fitted on ``train``.

    Returns:
      ``(X_train, *X_others)``; n-grams never seen in ``train`` are dropped; an empty
      list gives a ``[0, V]`` matrix.
    """
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    vectorizer = TfidfVectorizer(analyzer=ngrams, sublinear_tf=True)
    x_train = vectorizer.fit_transform(train)
    empty = sparse.csr_matrix((0, x_train.shape[1]))  # scikit-learn refuses to transform no rows
    return (x_train, *(vectorizer.transform(o) if len(o) else empty for o in others))


def tfidf_logreg_run(sentences: Sequence[Sequence[str]], labels: np.ndarray,
                     test_sentences: Sequence[Sequence[str]], test_labels: np.ndarray,
                     config: ConfigDict, workdir: str | None, **extra: Any) -> dict:
    """One budget and seed of the baseline (mode ``config.mode``, e.g. ``"tfidf_logreg"``).

    Args:
      sentences, labels: the labelled pool (token lists, int ``[N]``) in the order of
        the LSTM runs' dataset, so the same indices pick the same examples.
      test_sentences, test_labels: the test split.
      config, workdir, extra: as for ``logistic_regression_run``.
    Returns:
      The sub-run's summary (keys as ``transfer_experiment.fit_downstream``'s).
    """
    return logistic_regression_run(tfidf_features, sentences, labels, test_sentences,
                                   test_labels, config, workdir, features="tfidf_1_2gram",
                                   **extra)


__all__ = ["NGRAMS", "ngrams", "tfidf_features", "tfidf_logreg_run"]
