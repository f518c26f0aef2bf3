"""Sentence pooling (mean, SIF), linear probe, retrieval and word projections."""

import numpy as np
import pytest
from PIL import Image

from jaxdl.errors import ConfigError, DataError
from jaxdl.evaluation.probe import linear_probe_accuracy, retrieval_accuracy
from jaxdl.evaluation.projection import plot_word_projection
from jaxdl.evaluation.sentence_pooling import mean_pool, sif_embed
from jaxdl.evaluation.word_vectors import WordVectors


def _toy_vectors():
    words = ["the", "cat", "dog", "car", "bus"]
    vectors = np.array([[1, 1, 0], [0, 2, 0], [0, 2, 2], [4, 0, 0], [4, 0, 2]], dtype=np.float32)
    return WordVectors(words, vectors)


def test_mean_pool_skips_oov_and_zeroes_empty():
    wv = _toy_vectors()
    result = mean_pool(wv, [["the", "cat", "zebra"], [], ["zebra"]])
    np.testing.assert_array_equal(result, [[0.5, 1.5, 0], [0, 0, 0], [0, 0, 0]])
    assert result.dtype == np.float32


def test_sif_weights_and_component_removal():
    wv = _toy_vectors()
    freq = {"the": 98.0, "cat": 1.0, "dog": 1.0}
    kept = sif_embed(wv, [["the", "cat"], ["dog"]], freq, a=1e-2, remove_components=0)
    w_the, w_cat = 1e-2 / (1e-2 + 0.98), 1e-2 / (1e-2 + 0.01)
    np.testing.assert_allclose(kept[0], (w_the * wv["the"] + w_cat * wv["cat"]) / 2, rtol=1e-6)
    np.testing.assert_allclose(kept[1], w_cat * wv["dog"], rtol=1e-6)
    sentences = [["the", "cat"], ["dog"], ["car", "the"], ["bus"], []]
    removed = sif_embed(wv, sentences, freq, a=1e-2, remove_components=1)
    raw = sif_embed(wv, sentences, freq, a=1e-2, remove_components=0)
    direction = np.linalg.svd(raw.astype(np.float64))[2][0]
    np.testing.assert_allclose(removed @ direction, 0, atol=1e-6)  # nothing left along the first PC
    np.testing.assert_array_equal(removed[4], 0)
    with pytest.raises(ConfigError, match="sif_embed a=0"):
        sif_embed(wv, sentences, freq, a=0)


def test_linear_probe_and_retrieval():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 40)
    centres = rng.standard_normal((3, 8)) * 3
    features = centres[labels] + rng.standard_normal((120, 8))
    accuracy = linear_probe_accuracy(features[::2], labels[::2], features[1::2], labels[1::2])
    assert accuracy == linear_probe_accuracy(features[::2], labels[::2], features[1::2], labels[1::2])
    assert accuracy > 0.95
    assert retrieval_accuracy(features, labels) > 0.95
    assert retrieval_accuracy(np.array([[1.0, 0], [0.9, 0.1], [0, 1]]), np.array([0, 1, 1])) == pytest.approx(1 / 3)
    with pytest.raises(DataError, match=r"train_x shape \(4, 8\) and train_y length 3 do not match"):
        linear_probe_accuracy(features[:4], labels[:3], features, labels)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_plot_word_projection_writes_png(tmp_path, method):
    wv = _toy_vectors()
    path = tmp_path / f"{method}.png"
    points = plot_word_projection(wv, wv.words, path, method=method)
    assert points.shape == (5, 2)
    assert Image.open(path).format == "PNG"
    with pytest.raises(DataError, match=r"words \['zebra'\] are not in the vocabulary"):
        plot_word_projection(wv, ["the", "cat", "zebra"], path)
    with pytest.raises(ConfigError, match="method='umap': expected 'pca' or 'tsne'"):
        plot_word_projection(wv, wv.words, path, method="umap")
