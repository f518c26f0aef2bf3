"""word2vec: pure batches, sub-sampling and noise formulas, settings, learning through fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict
from gensim.test.utils import datapath

from jaxdl.data.formats.plain_text import read_corpus
from jaxdl.errors import ConfigError, DataError
from jaxdl.word2vec.corpus import (Word2VecArrays, Word2VecCorpus, alias_table, keep_probability, noise_distribution,
                                   stream_sentences)
from jaxdl.word2vec.settings import Word2VecSettings, word2vec_config
from jaxdl.word2vec.sgns import make_batch
from jaxdl.word2vec.training import fit_word2vec_model


@pytest.fixture(scope="module")
def lee_corpus():
    return Word2VecCorpus.from_sentences(read_corpus(datapath("lee_background.cor")), min_count=5)


def _toy_corpus():
    sentences = [["a", "b", "a", "c"], ["b", "a"], ["d"], ["a", "b", "c", "a", "b"]]
    return Word2VecCorpus.from_sentences(sentences, min_count=2)


def test_vocabulary_is_frequency_ordered_and_drops_rare_words():
    corpus = _toy_corpus()
    assert corpus.words == ["a", "b", "c"]  # "d" occurs once < min_count
    assert corpus.counts.tolist() == [5, 4, 2]
    assert corpus.ids.tolist() == [0, 1, 0, 2, 1, 0, 0, 1, 2, 0, 1]
    assert corpus.sentence_ids.tolist() == [0, 0, 0, 0, 1, 1, 3, 3, 3, 3, 3]
    with pytest.raises(DataError, match="no word occurs at least min_count=9 times"):
        Word2VecCorpus.from_sentences([["a"]], min_count=9)


def test_keep_probability_is_word2vec_c_formula():
    counts = np.array([1000, 100, 10, 1])
    threshold = 1e-3 * counts.sum()
    expected = (np.sqrt(counts / threshold) + 1) * threshold / counts
    np.testing.assert_allclose(keep_probability(counts, 1e-3), expected, rtol=1e-6)
    assert keep_probability(counts, 1e-3)[0] == pytest.approx((np.sqrt(1000 / 1.111) + 1) * 1.111 / 1000, rel=1e-6)
    assert keep_probability(counts, 0.0).tolist() == [1.0, 1.0, 1.0, 1.0]


def test_noise_draws_follow_count_to_the_0_75(lee_corpus):
    arrays = lee_corpus.device_arrays(batch_centres=1024, sample=1e-3)
    counts = np.zeros(len(lee_corpus.words))
    for step in range(40):  # 40 * 1024 * 5 = 204800 draws
        batch = make_batch(arrays, jax.random.key(0), step, batch_centres=1024, window=5, negative=5,
                           shared_negatives=True)
        counts += np.bincount(np.asarray(batch["negatives"]).ravel(), minlength=len(counts))
    expected = lee_corpus.counts ** 0.75 / (lee_corpus.counts ** 0.75).sum()
    top = slice(0, 20)  # the frequent words have enough draws for a tight check
    np.testing.assert_allclose(counts[top] / counts.sum(), expected[top], rtol=0.06)
    accept, alias = alias_table(noise_distribution(lee_corpus.counts))
    implied = accept / len(accept)
    np.add.at(implied, alias, (1 - accept) / len(accept))
    np.testing.assert_allclose(implied, expected, atol=1e-7)


def test_batch_is_a_pure_function_of_seed_and_step(lee_corpus):
    arrays = lee_corpus.device_arrays(batch_centres=256, sample=1e-3)
    kwargs = dict(batch_centres=256, window=5, negative=5)
    first = make_batch(arrays, jax.random.key(3), 7, **kwargs)
    again = make_batch(arrays, jax.random.key(3), jnp.int32(7), **kwargs)
    for name in first:
        assert np.asarray(first[name]).tobytes() == np.asarray(again[name]).tobytes(), name
    other = make_batch(arrays, jax.random.key(3), 8, **kwargs)
    assert not np.array_equal(first["centres"], other["centres"])
    steps_per_epoch = lee_corpus.steps_per_epoch(256)
    next_epoch = make_batch(arrays, jax.random.key(3), 7 + steps_per_epoch, **kwargs)
    assert np.array_equal(first["centres"], next_epoch["centres"])  # same chunk, new draws
    assert not np.array_equal(first["context_mask"], next_epoch["context_mask"])


def test_windows_respect_sentences_subsampling_and_dynamic_width():
    corpus = _toy_corpus()
    arrays = corpus.device_arrays(batch_centres=16, sample=0.0)
    batch = make_batch(arrays, jax.random.key(0), 0, batch_centres=16, window=2, negative=3, sg=True)
    mask = np.asarray(batch["context_mask"]).astype(bool)
    contexts = np.asarray(batch["contexts"])
    # Position 4 ("b", sentence 1 = ["b", "a"]) may only see position 5 ("a").
    assert set(contexts[4][mask[4]].tolist()) <= {0}
    assert mask[4, :2].sum() == 0 and mask[4, 3] == 0  # nothing to the left, one word to the right
    assert mask[11:].sum() == 0  # padding positions are never centres
    widths = np.array([max(np.abs(np.array([-2, -1, 1, 2]))[m], default=0) for m in mask[:11]])
    assert widths.max() <= 2 and (mask.sum(axis=1)[:11] >= 1).sum() == 11
    negatives = np.asarray(batch["negatives"])
    assert negatives.shape == (16, 4, 3)
    assert np.all(np.asarray(batch["negative_mask"])[negatives == np.asarray(batch["centres"])[:, None, None]] == 0)


@pytest.mark.parametrize("streams", [1, 4, 16])
def test_streams_visit_every_position_once_an_epoch_from_their_own_spans(streams):
    # A corpus whose word id is its position: the centres name the positions trained.
    n, block, steps = 1000, 128, 8  # 8 steps of 128 cover the 1000 positions
    ids = np.zeros((steps + 2) * block, np.int32)
    sentence = np.full_like(ids, -1)
    ids[block:block + n], sentence[block:block + n] = np.arange(n), np.arange(n) // 50
    arrays = Word2VecArrays(jnp.asarray(ids), jnp.asarray(sentence), jnp.ones(n, jnp.float32),
                            jnp.ones(n, jnp.float32), jnp.arange(n, dtype=jnp.int32))
    seen = []
    for step in range(steps):
        batch = make_batch(arrays, jax.random.key(0), step, batch_centres=block, window=2, negative=2,
                           hashed_noise=True, streams=streams)
        centres = np.asarray(batch["centres"]).reshape(streams, block // streams)
        real = np.asarray(batch["context_mask"]).reshape(streams, block // streams, 4).any(-1)
        span = steps * block // streams  # stream s trains positions [s·span, (s+1)·span)
        for s in range(streams):
            first = s * span + step * block // streams
            expected = np.arange(first, first + block // streams)
            assert np.array_equal(centres[s][expected < n], expected[expected < n]), (step, s)
        seen.extend(np.asarray(batch["centres"])[real.reshape(-1)].tolist())
        assert int(batch["words"]) == sum(min(max(n - s * span - step * block // streams, 0), block // streams)
                                          for s in range(streams))
        # Every context is a real neighbour of its centre, in the same sentence, spans or not.
        contexts, mask = np.asarray(batch["contexts"]), np.asarray(batch["context_mask"]).astype(bool)
        offsets = contexts - np.asarray(batch["centres"])[:, None]
        assert np.all(np.abs(offsets[mask]) <= 2) and np.all(offsets[mask] != 0)
        assert np.all((contexts // 50)[mask] == (np.asarray(batch["centres"])[:, None] // 50).repeat(4, 1)[mask])
    assert sorted(seen) == list(range(n))  # each position once (every one has a neighbour here)


def test_one_stream_is_the_plain_batch(lee_corpus):
    arrays = lee_corpus.device_arrays(batch_centres=256, sample=1e-3)
    kwargs = dict(batch_centres=256, window=5, negative=5, hashed_noise=True)
    plain = make_batch(arrays, jax.random.key(3), 11, **kwargs)
    one = make_batch(arrays, jax.random.key(3), 11, streams=1, **kwargs)
    four = make_batch(arrays, jax.random.key(3), 11, streams=4, **kwargs)
    for name in plain:
        assert np.asarray(plain[name]).tobytes() == np.asarray(one[name]).tobytes(), name
    assert not np.array_equal(plain["centres"], four["centres"])


@pytest.mark.parametrize("update,chunks,lock_free", [("sequential", 1, False), ("sequential", 2, False),
                                                     ("sequential", 2, True), ("batched", 1, False)],
                         ids=["sequential", "sequential-2-chunks", "sequential-2-lock-free", "batched"])
@pytest.mark.parametrize("sg", [True, False], ids=["skip-gram", "cbow"])
def test_training_on_lee_makes_related_words_closer(lee_corpus, sg, update, chunks, lock_free):
    settings = Word2VecSettings(dim=32, epochs=10, sample=0.0, batch_centres=512, sg=sg, update=update,
                                chunks=chunks, lock_free=lock_free, alpha=0.025 if sg else 0.05, seed=0)
    result, wv = fit_word2vec_model(lee_corpus, settings)
    # In the Lee news corpus "palestinian"/"israeli" co-occur constantly; "palestinian"/"cricket" never.
    assert wv.similarity("palestinian", "israeli") > wv.similarity("palestinian", "cricket") + 0.05
    assert wv.similarity("australia", "australian") > wv.similarity("australia", "arafat")
    losses = [e["loss"] for e in result.history if e["split"] == "train"]
    assert losses[-1] < 2.6 < losses[0]  # started at 6 · log 2 ≈ 4.16 per example


def test_settings_are_validated():
    with pytest.raises(ConfigError, match=r"word2vec window=0: expected an integer ≥ 1"):
        Word2VecSettings(window=0)
    with pytest.raises(ConfigError, match=r"min_alpha=0.5: expected 0 ≤ min_alpha ≤ alpha=0.025"):
        Word2VecSettings(min_alpha=0.5)
    with pytest.raises(ConfigError, match=r"word2vec update='exact': expected one of"):
        Word2VecSettings(update="exact")
    with pytest.raises(ConfigError, match=r"word2vec chunks=0: expected an integer ≥ 1"):
        Word2VecSettings(chunks=0)
    with pytest.raises(ConfigError, match=r"word2vec chunks=9: expected at most batch_centres=8"):
        Word2VecSettings(chunks=9, batch_centres=8)
    with pytest.raises(ConfigError, match=r"word2vec lock_free=True with update='sequential', chunks=1: "
                                          r"expected update='sequential' and chunks ≥ 2"):
        Word2VecSettings(lock_free=True)
    with pytest.raises(ConfigError, match=r"word2vec streams=3: expected a divisor of batch_centres=4096 "
                                          r"\(each batch takes batch_centres / streams centres"):
        Word2VecSettings(streams=3)
    with pytest.raises(ConfigError, match=r"word2vec streams=16: expected a divisor of batch_centres=100"):
        Word2VecSettings(batch_centres=100)
    with pytest.raises(ConfigError, match=r"word2vec lock_free='yes': expected True or False"):
        Word2VecSettings(lock_free="yes", chunks=2)


def test_the_config_section_gives_the_settings():
    config = ConfigDict({"seed": 4, "word2vec": word2vec_config(epochs=2, sg=False)})
    assert Word2VecSettings.from_config(config) == Word2VecSettings(epochs=2, sg=False, seed=4)
    config.word2vec.windows = 3
    with pytest.raises(ConfigError, match=r"config.word2vec.windows: unknown word2vec setting; expected one of"):
        Word2VecSettings.from_config(config)
    with pytest.raises(ConfigError, match=r"word2vec_config\(size=...\): unknown word2vec setting"):
        word2vec_config(size=10)


def test_stream_reads_plain_and_gzip_files_like_read_corpus(tmp_path):
    import gzip

    (tmp_path / "a.txt").write_text("\ufeffThe cat sat.\r\n\nthe dog, the cat\n", encoding="utf-8")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("A cat\nthe end")
    (tmp_path / "c.txt").write_text("the cat again\n", encoding="utf-8")
    streamed = list(stream_sentences(tmp_path))
    assert streamed == [["the", "cat", "sat", "."], ["the", "dog", ",", "the", "cat"], ["a", "cat"],
                        ["the", "end"], ["the", "cat", "again"]]
    plain = read_corpus(tmp_path / "a.txt")
    assert list(stream_sentences(tmp_path / "a.txt")) == plain
    corpus = Word2VecCorpus.from_files(tmp_path, min_count=2)
    assert corpus.words == ["the", "cat"] and corpus.counts.tolist() == [5, 4] and corpus.raw_words == 16
    assert corpus.sentence_ids.tolist() == [0, 0, 1, 1, 1, 2, 3, 4, 4]
    (tmp_path / "d.txt").write_bytes(b"ok\n\xa1bad\n")
    with pytest.raises(DataError, match=r"d.txt:2: byte b'\\xa1' is not valid utf-8; .*encoding='latin-1'"):
        Word2VecCorpus.from_files(tmp_path)
