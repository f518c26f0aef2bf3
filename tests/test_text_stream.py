"""Streamed text corpora: plain and gzip files and directories give read_corpus's
sentences; a gzip file cut short is a DataError naming it."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from conftest import zipf_sentences
from jaxdl.data.formats.plain_text import read_corpus
from jaxdl.data.formats.plain_text import stream_sentences
from jaxdl.data.formats.text_files import stream_lines
from jaxdl.errors import DataError

TEXT = "\ufeffThe cat sat.\r\n\nOn the mat, the dog\nran away\n"


def test_plain_and_gzip_directory_streams_the_same_sentences(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.txt").write_text(TEXT, encoding="utf-8", newline="")
    (plain / "b.txt").write_text("second file\n")
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    (zipped / "a.txt.gz").write_bytes(gzip.compress(TEXT.encode()))
    (zipped / "b.txt.gz").write_bytes(gzip.compress(b"second file\n"))
    want = read_corpus(plain)
    assert list(stream_sentences(plain)) == want
    assert list(stream_sentences(zipped)) == want
    assert want[0] == ["the", "cat", "sat", "."] and want[-1] == ["second", "file"]
    assert list(stream_lines(zipped / "a.txt.gz"))[:2] == ["The cat sat.", ""]


def test_truncated_gzip_names_the_file(tmp_path):
    data = gzip.compress(("line of text\n" * 2000).encode())
    (tmp_path / "cut.txt.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match=r"cut.txt.gz: the gzip stream ends or breaks after "
                                        r"line \d+ .*expected a complete gzip file"):
        list(stream_lines(tmp_path / "cut.txt.gz"))


def test_bad_encoding_names_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"fine\nnot \xff utf8\n")
    with pytest.raises(DataError, match=r"bad.txt:2: byte .* is not valid utf-8"):
        list(stream_lines(tmp_path / "bad.txt"))


def test_token_chunks_on_disk_are_the_language_model_datasets_rows(tmp_path):
    from jaxdl.data.sequence_sets import language_model_dataset, token_stream
    from jaxdl.data.text import Vocab
    from jaxdl.data.token_chunks import TokenChunks, write_token_stream
    sentences = [["w%d" % (i * 7 % 23) for i in range(n)] for n in (3, 9, 1, 14, 5)]
    vocab = Vocab.build(sentences)
    path = str(tmp_path / "train.int32")
    assert write_token_stream(path, iter(sentences), vocab) == len(token_stream(sentences, vocab))
    np.testing.assert_array_equal(np.fromfile(path, np.int32), token_stream(sentences, vocab))
    for seq_len in (4, 5, 37):  # a partial last chunk; one chunk longer than the stream
        want = language_model_dataset(token_stream(sentences, vocab), seq_len=seq_len,
                                      name="train").arrays
        chunks = TokenChunks(path, seq_len)
        assert len(chunks) == len(want["y"])
        for i in range(len(chunks)):
            got = chunks[i]
            assert sorted(got) == sorted(want)
            for key in want:
                np.testing.assert_array_equal(got[key], want[key][i], err_msg=f"{key} {i}")
                assert got[key].dtype == want[key].dtype


def test_a_token_file_that_is_not_int32_ids_is_a_data_error(tmp_path):
    from jaxdl.data.token_chunks import TokenChunks
    (tmp_path / "bad.int32").write_bytes(b"\x00" * 6)
    with pytest.raises(DataError, match=r"bad.int32 holds 6 bytes; expected a whole number "
                                        r"of int32 ids"):
        TokenChunks(str(tmp_path / "bad.int32"), 4)


@pytest.mark.parametrize("level,workers", [("word", 0), ("char", 2)])
def test_language_model_streams_its_corpus_with_the_in_memory_runs_result(tmp_path, level,
                                                                         workers):
    from conftest import load_experiment
    from jaxdl.data.stdlib_corpus import embedded_corpus
    lines = "".join(" ".join(s) + "\n" for s in embedded_corpus()[:300])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt.gz").write_bytes(gzip.compress(lines.encode()))
    experiment = load_experiment("language_model")
    runs = {}
    for source in ("arrays", "stream"):
        config = experiment.get_config()
        config.data.update(corpus=str(corpus), level=level, max_vocab=300, seq_len=16,
                           source=source, workers=workers)
        config.model.update(embed_dim=8, hidden_dim=16, dropout=0.0)
        config.sample.update(num=1, length=4)
        config.train.update(batch_size=8, num_steps=12, eval_every=6, log_every=6,
                            steps_per_loop=3, eval_batch_size=32, progress_bar=False)
        config.checkpoint.every_steps = 0
        runs[source] = experiment.run(config, str(tmp_path / source))
    memory, stream = runs["arrays"], runs["stream"]
    assert stream["params_sha256"] == memory["params_sha256"]
    assert stream["metrics"]["test"] == memory["metrics"]["test"]
    assert stream["baselines"] == memory["baselines"]
    assert stream["data"] == memory["data"] and stream["vocab_size"] == memory["vocab_size"]
    assert stream["samples"] == memory["samples"]
    assert (tmp_path / "stream" / "token_streams" / "train.p0.int32").exists()


def _word2vec_corpus():
    from jaxdl.word2vec.corpus import Word2VecCorpus
    return Word2VecCorpus.from_sentences(zipf_sentences(), min_count=2)


@pytest.mark.parametrize("sg,update,streams", [
    pytest.param(True, "sequential", 1, marks=pytest.mark.leg2),
    pytest.param(True, "batched", 1, marks=pytest.mark.leg2),
    pytest.param(False, "batched", 1, marks=pytest.mark.leg2),
    (True, "sequential", 2)])  # the default update, streamed in two spans: in both legs
def test_word2vec_streamed_chunks_give_the_on_device_corpus_parameters(sg, update, streams):
    import jax
    from jaxdl.word2vec.stream import Word2VecStreamSource
    from jaxdl.word2vec.settings import Word2VecSettings
    from jaxdl.word2vec.training import Word2VecSource, fit_word2vec_model, word2vec_fit_config
    corpus = _word2vec_corpus()  # ~800 tokens: 13 chunks of 64, the last one padded
    settings = Word2VecSettings(dim=16, window=3, negative=3, min_count=2, epochs=2,
                                batch_centres=64, steps_per_call=3, seed=3, sg=sg,
                                update=update, streams=streams)
    # Batch by batch first: the same centres, contexts and negatives at every step.
    memory, stream = Word2VecSource(corpus, settings), Word2VecStreamSource(corpus, settings)
    try:
        arrays, tables = memory.device_arrays(), stream.device_arrays()
        for step in (0, 5, memory.steps_per_epoch - 1, memory.steps_per_epoch + 2):
            want = jax.jit(memory.make_batch)(arrays, memory.step_inputs(step, 1)[0])
            got = jax.jit(stream.make_batch)(tables, stream.step_inputs(step, 1)[0])
            assert sorted(got) == sorted(want)
            for key in want:
                np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]),
                                              err_msg=f"{key} at step {step}")
    finally:
        stream.close()
    runs = {source: fit_word2vec_model(corpus, settings, config=word2vec_fit_config(settings),
                                       source=source)[0]
            for source in ("arrays", "stream")}
    assert runs["stream"].params_sha256 == runs["arrays"].params_sha256
    assert runs["stream"].steps == runs["arrays"].steps == 2 * memory.steps_per_epoch


def test_word2vec_experiment_takes_data_source_stream(tmp_path):
    from conftest import load_experiment
    corpus = tmp_path / "corpus.txt.gz"
    rng = np.random.default_rng(1)
    lines = [" ".join(rng.choice([f"w{i}" for i in range(30)], size=8)) for _ in range(150)]
    corpus.write_bytes(gzip.compress("\n".join(lines).encode()))
    experiment = load_experiment("word2vec")
    runs = {}
    for source in ("arrays", "stream"):
        config = experiment.get_config()
        config.data.update(corpus=str(corpus), source=source)
        config.word2vec.update(dim=8, epochs=1, batch_centres=64, steps_per_call=2, min_count=1)
        config.eval.update(neighbours_of=("w1",), plot_words=())
        config.train.progress_bar = False
        runs[source] = experiment.run(config, None)
    assert runs["stream"]["params_sha256"] == runs["arrays"]["params_sha256"]
    assert runs["stream"]["evaluation"]["neighbours"] == runs["arrays"]["evaluation"]["neighbours"]
