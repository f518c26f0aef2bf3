"""Word vectors as a ``.npy`` matrix beside a vocabulary file (a GloVe packaging)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxdl.errors import ConfigError, DataError
from jaxdl.pretrained.word_vectors_file import embedding_matrix_from_file, read_vectors

WORDS = ["the", "film", "good", "the", "bad"]  # a repeated word keeps its first row


def matrix(n: int = len(WORDS)) -> np.ndarray:
    return np.arange(n * 3, dtype=np.float32).reshape(n, 3)


def test_npy_with_a_vocab_file_reads_rows_by_word(tmp_path):
    np.save(tmp_path / "glove_emb.npy", matrix())
    (tmp_path / "glove_emb.vocab").write_text("\n".join(WORDS) + "\n")
    vectors, fmt = read_vectors(tmp_path / "glove_emb.npy")
    assert fmt == "npy" and vectors.words == ["the", "film", "good", "bad"]
    np.testing.assert_array_equal(vectors.vectors, matrix()[[0, 1, 2, 4]])
    table, report = embedding_matrix_from_file(tmp_path / "glove_emb.npy", ["bad", "Film"], 3,
                                               seed=0)
    np.testing.assert_array_equal(table, matrix()[[4, 1]])
    assert report["lowercased"] == 1 and report["format"] == "npy"


def test_npy_with_a_parquet_vocabulary(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    np.save(tmp_path / "glove_6B_50d_emb.npy", matrix())
    pq.write_table(pa.table({"index": WORDS}), tmp_path / "glove_6B_index.parquet")
    vectors, _ = read_vectors(tmp_path / "glove_6B_50d_emb.npy")
    np.testing.assert_array_equal(vectors.vectors[vectors.index["bad"]], matrix()[4])


def test_npy_without_vocabulary_or_with_wrong_rows_is_refused(tmp_path):
    np.save(tmp_path / "emb.npy", matrix())
    with pytest.raises(ConfigError, match="no vocabulary file"):
        read_vectors(tmp_path / "emb.npy")
    (tmp_path / "emb.txt").write_text("the\nfilm\n")
    with pytest.raises(DataError, match=r"\(5, 3\).*2 words"):
        read_vectors(tmp_path / "emb.npy")
    (tmp_path / "text.npy").write_text("the 1 2 3\n")
    (tmp_path / "text.vocab").write_text("the\n")
    with pytest.raises(DataError, match="not a .npy matrix"):
        read_vectors(tmp_path / "text.npy")
