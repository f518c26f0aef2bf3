"""The IDX, CIFAR, fastText and CoNLL-U readers through the streamed path: example readers that read one
example at a time give exactly the arrays the in-memory readers build, so the same
batches (and a gzip file cut short or a bad line is the same DataError)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from formats import (UD_ENGLISH_CONLLU, fasttext_line, make_tar_gz, random_mnist, write_mnist,
                     write_random_cifar10)
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.cifar import load_cifar
from jaxdl.data.formats.cifar import CifarExamples
from jaxdl.data.formats.idx import load_mnist
from jaxdl.data.formats.idx import MnistExamples
from jaxdl.data.sequence_sets import classification_dataset, tagging_dataset
from jaxdl.data.sources import ArrayTrainSource
from jaxdl.data.streaming import StreamingSource
from jaxdl.data.text import Vocab, tokenize
from jaxdl.data.formats.conllu import ConlluExamples, TaggingEncoding, read_conllu
from jaxdl.data.formats.fasttext import ClassificationEncoding, FastTextExamples, read_fasttext
from jaxdl.errors import DataError


def _same_batches(records, arrays, batch_size=4, workers=2):
    memory = ArrayTrainSource(ArrayDataset(arrays), batch_size, seed=5)
    streamed = StreamingSource(records, batch_size, seed=5, workers=workers)
    try:
        for step in (0, 3, 7):
            idx = memory.step_inputs(step, 2)
            got = streamed.step_inputs(step, 2).fields
            for key, value in arrays.items():
                np.testing.assert_array_equal(np.asarray(got[key]), value[idx], err_msg=key)
                assert got[key].dtype == value.dtype, key
    finally:
        streamed.close()


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_records_are_load_mnists_examples(tmp_path, gz):
    write_mnist(tmp_path / "mnist", random_mnist(n_train=18, n_test=5), gz=gz)
    arrays = load_mnist(tmp_path / "mnist")
    for split in ("train", "test"):
        records = MnistExamples(tmp_path / "mnist", split, cache_dir=str(tmp_path / "cache"))
        assert len(records) == len(arrays[split]["y"])
        for i in range(len(records)):
            example = records[i]
            np.testing.assert_array_equal(example["x"], arrays[split]["x"][i])
            assert example["x"].dtype == np.float32 and example["y"] == arrays[split]["y"][i]
    assert (tmp_path / "cache").exists() == gz  # only a gzip file is decompressed
    _same_batches(MnistExamples(tmp_path / "mnist", "train", cache_dir=str(tmp_path / "cache")),
                  arrays["train"])


def test_mnist_records_refuse_a_truncated_file_and_a_cut_gzip(tmp_path):
    files = random_mnist(n_train=6, n_test=2)
    write_mnist(tmp_path / "raw", files, gz=False)
    path = tmp_path / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: header shape \(6, 28, 28\) "
                                        r"of uint8 needs 4704 data bytes .*\(truncated\?\)"):
        MnistExamples(tmp_path / "raw", "train")
    write_mnist(tmp_path / "gz", files, gz=True)
    path = tmp_path / "gz" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: the gzip data is damaged "
                                        r"or truncated"):
        MnistExamples(tmp_path / "gz", "train", cache_dir=str(tmp_path / "cache"))
    assert not list((tmp_path / "cache").iterdir())  # nothing half-written is left


@pytest.mark.parametrize("archive", [False, True])
def test_cifar_examples_are_load_cifars_examples(tmp_path, archive):
    directory, _ = write_random_cifar10(tmp_path / "data", per_batch=4)
    path = make_tar_gz(directory, tmp_path / "cifar-10-python.tar.gz") if archive else directory
    arrays = load_cifar(path)
    for split in ("train", "test"):
        records = CifarExamples(path, split, cache_dir=str(tmp_path / f"cache-{split}"))
        assert len(records) == len(arrays[split]["y"]) == (20 if split == "train" else 4)
        for i in range(len(records)):
            np.testing.assert_array_equal(records[i]["x"], arrays[split]["x"][i])
            assert records[i]["y"] == arrays[split]["y"][i]
    _same_batches(CifarExamples(path, "train", cache_dir=str(tmp_path / "again")),
                  arrays["train"])


def test_cifar_examples_name_a_corrupt_batch(tmp_path):
    directory, _ = write_random_cifar10(tmp_path / "data", per_batch=2)
    batch = directory / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:50])
    with pytest.raises(DataError, match=r"data_batch_3: cannot unpickle"):
        CifarExamples(directory, "train", cache_dir=str(tmp_path / "cache"))
    assert not list((tmp_path / "cache").iterdir())  # no half-decoded split is left


def _line(labels, words) -> str:
    return fasttext_line(labels, words).rstrip("\n")


# A byte-order mark, CRLF, a blank line, a lone CR, a blank line of spaces, a line
# with labels but no text, several labels on a line.
FASTTEXT = ("\ufeff" + _line(["pos"], ["Good", "film"]) + "\r\n"
            + "\n" + _line(["neg", "meh"], ["Bad", "plot", "really"]) + "\r"
            + _line(["pos"], ["Lovely"]) + "\n   \n"
            + _line(["neg"], []) + "\n"
            + "".join(_line([["pos", "neg"][i % 2]], [f"w{i % 5}", "x"]) + "\n"
                      for i in range(12)))


@pytest.mark.parametrize("gz", [False, True])
def test_fasttext_examples_are_read_fasttexts_lines_and_classification_rows(tmp_path, gz):
    path = tmp_path / ("train.txt.gz" if gz else "train.txt")
    data = FASTTEXT.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    texts, labels = read_fasttext(path)
    plain = FastTextExamples(path, cache_dir=str(tmp_path / "cache"))
    assert len(plain) == len(texts) == 16
    assert [plain.text_and_labels(i) for i in range(len(plain))] == list(zip(texts, labels))
    assert plain.text_and_labels(1) == ("Bad plot really", ["neg", "meh"])
    sentences = [tokenize(t) for t in texts]
    vocab = Vocab.build(sentences)
    classes = sorted({ls[0] for ls in labels})
    arrays = classification_dataset(sentences, [ls[0] for ls in labels], vocab, classes,
                                    max_len=2, name="train").arrays
    encoded = FastTextExamples(path, ClassificationEncoding(vocab, classes, max_len=2),
                              cache_dir=str(tmp_path / "cache"))
    for i in range(len(encoded)):
        for key, value in arrays.items():
            np.testing.assert_array_equal(encoded[i][key], value[i], err_msg=f"{key} {i}")
    _same_batches(encoded, arrays)


def test_fasttext_examples_name_a_line_without_a_label_before_reading(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text(fasttext_line(["a"], ["ok"]) + "\n\nno label here\n")
    with pytest.raises(DataError) as memory:
        read_fasttext(path)
    with pytest.raises(DataError) as streamed:
        FastTextExamples(path)
    assert str(streamed.value) == str(memory.value)
    assert "bad.txt:4: expected one or more labels like '__label__X'" in str(streamed.value)


def test_a_label_unseen_in_training_is_a_data_error_naming_it():
    encode = ClassificationEncoding(Vocab.build([["a"]]), ["pos"], max_len=3)
    with pytest.raises(DataError, match=r"label 'neg' is not among the 1 training classes"):
        encode("a", ["neg"])


# The UD fixture (a multiword token, an empty node), CRLF endings, a sentence with no
# syntactic word (only a range row: dropped, as load_tagged drops it), no final blank line.
CONLLU = (UD_ENGLISH_CONLLU.replace("\n", "\r\n")
          + "# sent_id = 4\n1-2\tdunno\t_\t_\t_\t_\t_\t_\t_\t_\n\n"
          + "1\tLast\tlast\tADJ\tJJ\t_\t0\troot\t_\t_\n2\tone\tone\tNUM\tCD\t_\t1\tdep\t_\t_")


@pytest.mark.parametrize("gz", [False, True])
def test_conllu_records_are_load_taggeds_sentences_and_tagging_rows(tmp_path, gz):
    path = tmp_path / ("train.conllu.gz" if gz else "train.conllu")
    path.write_bytes(gzip.compress(CONLLU.encode()) if gz else CONLLU.encode())
    want = [s for s in read_conllu(path) if s]
    plain = ConlluExamples(path, cache_dir=str(tmp_path / "cache"))
    assert len(plain) == len(want) == 4
    assert [plain.words(i) for i in range(len(plain))] == want
    vocab = Vocab.build([[w.lower() for w, _ in s] for s in want])
    chars = Vocab.build([list(w) for s in want for w, _ in s])
    tags = sorted({t for s in want for _, t in s})
    arrays = tagging_dataset(want, vocab, tags, max_len=5, name="train", char_vocab=chars,
                             max_word_len=4).arrays
    encoded = ConlluExamples(path, TaggingEncoding(vocab, tags, max_len=5, char_vocab=chars,
                                                  max_word_len=4),
                            cache_dir=str(tmp_path / "cache"))
    for i in range(len(encoded)):
        for key, value in arrays.items():
            np.testing.assert_array_equal(encoded[i][key], value[i], err_msg=f"{key} {i}")
    _same_batches(encoded, arrays, batch_size=2)


def test_conllu_records_refuse_what_read_conllu_refuses(tmp_path):
    bad_row = "1\tA\ta\tDET\n\n"
    late_comment = "1\tA\ta\tDET\tDT\t_\t0\troot\t_\t_\n# late\n\n"
    for name, text in (("row", bad_row), ("comment", late_comment)):
        path = tmp_path / f"{name}.conllu"
        path.write_text(text)
        with pytest.raises(DataError) as memory:
            read_conllu(path)
        with pytest.raises(DataError) as streamed:
            ConlluExamples(path)
        assert str(streamed.value) == str(memory.value)
