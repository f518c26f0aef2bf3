"""Sentence vectors from word vectors: mean pooling and SIF (Arora et al., 2017).

Both skip out-of-vocabulary words and give an all-zero vector for a sentence
with no known word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from jaxdl.errors import ConfigError
from jaxdl.evaluation.word_vectors import WordVectors


def _weighted_average(wv: WordVectors, sentences: Sequence[Sequence[str]], weight: Mapping[str, float] | None):
    embeddings = np.zeros((len(sentences), wv.dim), dtype=np.float32)
    for row, sentence in enumerate(sentences):
        known = [w for w in sentence if w in wv.index]
        if not known:
            continue
        vectors = wv.vectors[[wv.index[w] for w in known]]
        weights = np.ones(len(known)) if weight is None else np.array([weight[w] for w in known])
        embeddings[row] = (weights @ vectors) / len(known)
    return embeddings


def mean_pool(wv: WordVectors, sentences: Sequence[Sequence[str]]) -> np.ndarray:
    """Mean of the in-vocabulary word vectors of each sentence.

    Args:
        wv: word vectors `[V, D]`.
        sentences: n token lists.

    Returns:
        float32 `[n, D]`; zeros for a sentence without a known word.
    """
    return _weighted_average(wv, sentences, None)


def sif_embed(
    wv: WordVectors,
    sentences: Sequence[Sequence[str]],
    word_freq: Mapping[str, float],
    *,
    a: float = 1e-3,
    remove_components: int = 1,
) -> np.ndarray:
    """Smooth-inverse-frequency sentence embedding with common-component removal.

    Each known word w is weighted a / (a + p(w)), p(w) its relative frequency (a
    word missing from `word_freq` gets p = 0, weight 1), the weighted vectors are
    averaged, and the projection on the first `remove_components` principal
    directions of this set of sentence vectors (uncentred, as in the paper's
    code) is subtracted.

    Args:
        wv: word vectors `[V, D]`.
        sentences: n token lists.
        word_freq: word → count or probability (normalised here to sum to 1).
        a: the SIF smoothing constant.
        remove_components: principal directions removed (0 keeps the weighted mean).

    Returns:
        float32 `[n, D]`; zeros for a sentence without a known word.
    """
    if a <= 0:
        raise ConfigError(f"sif_embed a={a!r}: expected a smoothing constant > 0")
    if remove_components < 0:
        raise ConfigError(f"sif_embed remove_components={remove_components!r}: expected an integer ≥ 0")
    total = float(sum(word_freq.values()))
    if total <= 0:
        raise ConfigError("sif_embed word_freq: the frequencies sum to 0, expected positive counts")
    weight = {w: a / (a + word_freq.get(w, 0.0) / total) for s in sentences for w in s}
    embeddings = _weighted_average(wv, sentences, weight)
    if remove_components and len(sentences) > 1:
        # Right singular vectors of the (uncentred) embedding matrix = its principal directions.
        _, _, directions = np.linalg.svd(embeddings.astype(np.float64), full_matrices=False)
        components = directions[:remove_components]
        nonzero = np.any(embeddings != 0, axis=1, keepdims=True)
        embeddings = embeddings - nonzero * ((embeddings @ components.T) @ components)
    return embeddings.astype(np.float32)
