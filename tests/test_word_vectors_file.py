"""Embedding tables from GloVe, fastText .vec and word2vec (text, binary) files:
rows aligned to the vocabulary, the in-vocabulary report, random rows, and errors."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from formats import vector_lines, word2vec_binary, word2vec_text
from jaxdl.errors import ConfigError, DataError
from jaxdl.pretrained.glove_format import load_glove
from jaxdl.pretrained.word_vectors_file import detect_format, embedding_matrix_from_file

WORDS = ["the", "film", "was", "Good", "dull"]
VECTORS = np.arange(15, dtype=np.float32).reshape(5, 3) / 4 - 1  # exact in text
VOCAB = ["<pad>", "<unk>", "film", "good", "the", "masterpiece"]


def _write(tmp_path, kind: str) -> str:
    path = tmp_path / {"glove": "v.txt", "fasttext": "v.vec", "word2vec_text": "v.w2v.txt",
                       "word2vec_binary": "v.bin", "glove_gz": "v.txt.gz", "fasttext_gz": "v.vec.gz"}[kind]
    if kind == "glove":
        path.write_text(vector_lines(WORDS, VECTORS))
    elif kind == "glove_gz":
        path.write_bytes(gzip.compress(vector_lines(WORDS, VECTORS).encode()))
    elif kind.startswith("fasttext"):  # fastText's .vec: a header, a space after each vector
        text = word2vec_text(WORDS, VECTORS, trailing=" ")
        path.write_bytes(gzip.compress(text.encode()) if kind.endswith("_gz") else text.encode())
    elif kind == "word2vec_text":
        path.write_text(word2vec_text(WORDS, VECTORS))
    else:
        path.write_bytes(word2vec_binary(WORDS, VECTORS))
    return str(path)


@pytest.mark.parametrize("kind", ["glove", "glove_gz", "fasttext", "fasttext_gz",
                                  "word2vec_text", "word2vec_binary"])
def test_every_format_loads_rows_aligned_to_the_vocabulary(tmp_path, kind):
    path = _write(tmp_path, kind)
    table, report = embedding_matrix_from_file(path, VOCAB, 3, seed=0, zero_words=("<pad>",))
    assert report["format"] == {"glove_gz": "glove", "fasttext": "word2vec_text",
                                "fasttext_gz": "word2vec_text"}.get(kind, kind)
    assert table.shape == (6, 3) and table.dtype == np.float32
    np.testing.assert_array_equal(table[2], VECTORS[1])  # film
    np.testing.assert_array_equal(table[4], VECTORS[0])  # the
    np.testing.assert_array_equal(table[0], np.zeros(3))  # <pad>
    # "good" is only in the file as "Good": file words are matched exactly, not lowered.
    assert report["in_vocabulary"] == 2 and report["in_vocabulary_share"] == 2 / 6
    assert report["lowercased"] == 0 and report["random_rows"] == 3
    assert report["missing_examples"] == ["<unk>", "good", "masterpiece"]


def test_case_fallback_and_the_stated_random_scale(tmp_path):
    path = _write(tmp_path, "glove")
    vocab = ["good", "film", "the"] + [f"oov{i}" for i in range(2000)]
    table, report = embedding_matrix_from_file(path, ["Good"] + vocab[1:], 3, seed=1)
    np.testing.assert_array_equal(table[0], VECTORS[3])
    assert report["lowercased"] == 0
    table, report = embedding_matrix_from_file(path, vocab, 3, seed=1, scale=0.5)
    assert report["random_scale"] == 0.5 and report["random_init"] == "normal(0, 0.5^2), seed 1"
    assert report["in_vocabulary"] == 2  # "good" is not "Good" (file words are not lowered)
    assert abs(np.std(table[3:]) - 0.5) < 0.02 and abs(np.mean(table[3:])) < 0.02
    again, _ = embedding_matrix_from_file(path, vocab, 3, seed=1, scale=0.5)
    assert again.tobytes() == table.tobytes()
    _, default = embedding_matrix_from_file(path, vocab, 3, seed=1)
    assert default["random_scale"] == pytest.approx(float(np.std(VECTORS[[1, 0]])))


def test_a_cased_vocabulary_word_falls_back_to_the_lowercase_file_word(tmp_path):
    path = tmp_path / "lower.txt"
    path.write_text("paris 1.0 2.0\n")
    table, report = embedding_matrix_from_file(str(path), ["Paris", "x"], 2, seed=0)
    np.testing.assert_array_equal(table[0], [1.0, 2.0])
    assert report["lowercased"] == 1 and report["in_vocabulary"] == 1
    _, strict = embedding_matrix_from_file(str(path), ["Paris", "paris"], 2, seed=0,
                                           lowercase_fallback=False)
    assert strict["in_vocabulary"] == 1 and strict["lowercased"] == 0


def test_dimension_mismatch_is_a_config_error_naming_both(tmp_path):
    for kind in ("glove", "fasttext", "word2vec_binary"):
        with pytest.raises(ConfigError, match=r"word vectors have dimension 3, but the model's "
                                              r"embedding has dimension 50"):
            embedding_matrix_from_file(_write(tmp_path, kind), VOCAB, 50, seed=0)


def test_bad_files_and_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="is not a file"):
        embedding_matrix_from_file(str(tmp_path / "none.vec"), VOCAB, 3, seed=0)
    with pytest.raises(ConfigError, match="word-vector format 'hdf5'"):
        embedding_matrix_from_file(_write(tmp_path, "glove"), VOCAB, 3, seed=0, fmt="hdf5")
    with pytest.raises(DataError, match="none of the 2 vocabulary words is among its 5 words"):
        embedding_matrix_from_file(_write(tmp_path, "glove"), ["xx", "yy"], 3, seed=0)
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 2 3\nb 1 2\n")
    with pytest.raises(DataError, match=r"bad.txt:2: 2 values after the word 'b', expected 3"):
        load_glove(bad)


def test_glove_words_with_spaces_and_detection(tmp_path):
    path = tmp_path / "spaces.txt"
    path.write_text("a 1 2\nnew york 3 4\n")
    vectors = load_glove(path)
    assert vectors.words == ["a", "new york"] and vectors["new york"].tolist() == [3.0, 4.0]
    assert detect_format(path) == "glove"
    assert detect_format(_write(tmp_path, "word2vec_binary")) == "word2vec_binary"
    assert detect_format(_write(tmp_path, "fasttext")) == "word2vec_text"


def test_gensim_written_files_load(tmp_path):
    gensim = pytest.importorskip("gensim")
    kv = gensim.models.KeyedVectors(3)
    kv.add_vectors(WORDS, VECTORS)
    for binary in (False, True):
        path = str(tmp_path / f"g{int(binary)}")
        kv.save_word2vec_format(path, binary=binary)
        table, report = embedding_matrix_from_file(path, VOCAB, 3, seed=0)
        assert report["format"] == ("word2vec_binary" if binary else "word2vec_text")
        np.testing.assert_array_equal(table[[2, 4]], VECTORS[[1, 0]])
