"""Streamed text corpora: plain and gzip files and directories give read_corpus's
sentences; a gzip file cut short is a DataError naming it."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from jaxdl.data.text_readers import read_corpus
from jaxdl.data.text_stream import stream_lines, stream_sentences
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
    from jaxdl.data.embedded_text import embedded_corpus
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
