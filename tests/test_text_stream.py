"""Streamed text corpora: plain and gzip files and directories give read_corpus's
sentences; a gzip file cut short is a DataError naming it."""

from __future__ import annotations

import gzip

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
