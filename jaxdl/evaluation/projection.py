"""2-D pictures of word vectors: PCA or t-SNE, words written at their points."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from jaxdl.errors import ConfigError, DataError
from jaxdl.evaluation.plots import pyplot
from jaxdl.evaluation.word_vectors import WordVectors


def project_words(wv: WordVectors, words: Sequence[str], *, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2-D coordinates `[len(words), 2]` of the chosen words by PCA or t-SNE.

    t-SNE's perplexity (30 by default) is clipped below the number of points, as
    scikit-learn requires.
    """
    missing = [w for w in words if w not in wv]
    if missing:
        raise DataError(f"project_words: words {missing[:10]} are not in the vocabulary of {len(wv)} words")
    if len(words) < 3:
        raise DataError(f"project_words: {len(words)} words given, expected at least 3")
    vectors = wv.vectors[[wv.index[w] for w in words]].astype(np.float64)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(vectors)
    if method == "tsne":
        perplexity = min(30.0, len(words) - 1.0)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors)
    raise ConfigError(f"project_words method={method!r}: expected 'pca' or 'tsne'")


def plot_word_projection(
    wv: WordVectors, words: Sequence[str], path: str | os.PathLike, *, method: str = "pca", seed: int = 0
) -> np.ndarray:
    """Writes a PNG scatter of the words' 2-D projection, each point labelled.

    Args:
        wv: word vectors.
        words: the words to show (all in the vocabulary, at least 3).
        path: output PNG file.
        method: 'pca' or 'tsne'.
        seed: random state of the projection.

    Returns:
        the 2-D coordinates `[len(words), 2]`.
    """
    points = project_words(wv, words, method=method, seed=seed)
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(8, 8))
    axes.scatter(points[:, 0], points[:, 1], s=12)
    for word, (x, y) in zip(words, points):
        axes.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
    axes.set_title(f"{method.upper()} projection of {len(words)} word vectors")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return points
