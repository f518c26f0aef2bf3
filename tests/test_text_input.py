"""Text input as it comes: gzip, other encodings, Unicode, CR line ends, word2vec formats, empty files."""

from __future__ import annotations

import bz2
import gzip
import unicodedata

import numpy as np
import pytest

from conftest import load_experiment, run_command
from jaxdl.data.text import Vocab, tokenize
from jaxdl.data.formats.conllu import read_conllu
from jaxdl.data.formats.fasttext import read_fasttext
from jaxdl.data.formats.plain_text import read_corpus
from jaxdl.errors import DataError
from jaxdl.evaluation.word2vec_format import load_word2vec_format, save_word2vec_format
from jaxdl.recipes.text import corpus_without, load_labelled_splits, load_tagged

CONLLU = ("# sent_id = 1\n1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_\n\n"
          "# sent_id = 2\n1\tCafé\tcafé\tNOUN\tNN\t_\t0\troot\t_\t_\n\n")
FASTTEXT = "__label__pos a good film\n__label__neg a dull film\n"
CORPUS = "The cat sat.\nLe café était fermé.\n"
TEXT_EXPERIMENTS = ("text_classifier", "language_model", "pos_tagger", "transfer_text", "word2vec")


@pytest.mark.parametrize("name", ["data.gz", "data.txt"])  # magic bytes, not the name
def test_gzip_files_read_like_plain_ones_in_every_reader(tmp_path, name):
    def both(text, reader, **kwargs):
        plain, packed = tmp_path / "plain", tmp_path / name
        plain.write_text(text, encoding="utf-8")
        packed.write_bytes(gzip.compress(text.encode("utf-8")))
        return reader(plain, **kwargs), reader(packed, **kwargs)

    for text, reader in ((CORPUS, read_corpus), (CONLLU, read_conllu), (FASTTEXT, read_fasttext)):
        plain, packed = both(text, reader)
        assert packed == plain and plain
    vectors = np.array([[0.5, -1.25], [3.0, 0.125]], np.float32)
    for binary in (False, True):
        path = tmp_path / "v.bin"
        save_word2vec_format(path, ["the", "café"], vectors, binary=binary)
        (tmp_path / name).write_bytes(gzip.compress(path.read_bytes()))
        loaded = load_word2vec_format(tmp_path / name, binary=binary)
        assert loaded.words == ["the", "café"] and loaded.vectors.tobytes() == vectors.tobytes()


def test_other_compressions_are_named_not_decoded_as_text(tmp_path):
    path = tmp_path / "corpus.txt.bz2"
    path.write_bytes(bz2.compress(CORPUS.encode()))
    with pytest.raises(DataError, match=r"corpus.txt.bz2: the file is bzip2-compressed; decompress"):
        read_corpus(path)


@pytest.mark.parametrize("name", TEXT_EXPERIMENTS)
def test_every_text_experiment_has_an_encoding_key(name):
    assert load_experiment(name).get_config().data.encoding == "utf-8"


def test_the_encoding_key_reaches_the_readers(tmp_path):
    for split in ("train", "test"):
        (tmp_path / f"{split}.txt").write_bytes(FASTTEXT.replace("good", "süß").encode("latin-1"))
    (tmp_path / "corpus.txt").write_bytes(CORPUS.encode("latin-1"))
    (tmp_path / "tags.conllu").write_bytes(CONLLU.encode("latin-1"))

    classifier = load_experiment("text_classifier")
    config = classifier.get_config()
    config.data.train, config.data.test = str(tmp_path / "train.txt"), str(tmp_path / "test.txt")
    with pytest.raises(DataError, match=r"train.txt:1: byte offset \d+ .* is not valid utf-8"):
        load_labelled_splits(config.data)
    config.data.encoding = "latin-1"
    (train_sentences, _), _ = load_labelled_splits(config.data)
    assert train_sentences[0] == ["a", "süß", "film"]

    lm = load_experiment("language_model")
    config = lm.get_config()
    config.data.corpus, config.data.encoding = str(tmp_path / "corpus.txt"), "latin-1"
    assert lm.load_sentences(config)[1][:2] == ["le", "café"]

    transfer = load_experiment("transfer_text")
    config = transfer.get_config()
    config.data.corpus, config.data.encoding = str(tmp_path / "corpus.txt"), "latin-1"
    assert corpus_without(config.data, [])[1][1] == "café"

    tagger = load_experiment("pos_tagger")
    config = tagger.get_config()
    config.data.train = config.data.test = str(tmp_path / "tags.conllu")
    config.data.encoding = "latin-1"
    train, _ = load_tagged(config.data)
    assert train[1] == [("Café", "NOUN")]


def test_tokenize_keeps_combining_marks_and_whole_indic_words():
    nfd = unicodedata.normalize("NFD", "Café crème")
    assert nfd != "Café crème" and tokenize(nfd) == tokenize("Café crème") == ["café", "crème"]
    assert tokenize("हिन्दी भाषा बोलो।") == ["हिन्दी", "भाषा", "बोलो", "।"]
    assert tokenize("தமிழ் மொழி") == ["தமிழ்", "மொழி"]
    assert tokenize("我爱北京 and ひらがな") == ["我", "爱", "北", "京", "and", "ひ", "ら", "が", "な"]
    assert tokenize("Don't stop, Zoë!") == ["don't", "stop", ",", "zoë", "!"]  # unchanged


def test_cr_only_line_ends_are_line_ends(tmp_path):
    for name, text, reader, count in (("c.txt", CORPUS, read_corpus, 2),
                                      ("t.conllu", CONLLU, read_conllu, 2),
                                      ("f.txt", FASTTEXT, read_fasttext, None)):
        path = tmp_path / name
        path.write_bytes(text.replace("\n", "\r").encode())
        crlf = tmp_path / ("crlf-" + name)
        crlf.write_bytes(text.replace("\n", "\r\n").encode())
        lf = tmp_path / ("lf-" + name)
        lf.write_bytes(text.encode())
        assert reader(path) == reader(crlf) == reader(lf)
        if count:
            assert len(reader(path)) == count


def test_word2vec_text_or_binary_is_detected_or_refused(tmp_path):
    vectors = np.array([[0.5, -1.25], [3.0, 0.125]], np.float32)
    text, binary = tmp_path / "v.txt", tmp_path / "v.bin"
    save_word2vec_format(text, ["a", "b"], vectors)
    save_word2vec_format(binary, ["a", "b"], vectors, binary=True)
    assert load_word2vec_format(text).vectors.tobytes() == vectors.tobytes()
    assert load_word2vec_format(binary).vectors.tobytes() == vectors.tobytes()  # detected
    with pytest.raises(DataError, match=r"v.txt:2: binary=True, but the file is in the word2vec "
                                        r"text format"):
        load_word2vec_format(text, binary=True)
    with pytest.raises(DataError, match=r"v.bin:2: binary=False, but the file looks like the "
                                        r"word2vec binary format"):
        load_word2vec_format(binary, binary=False)
    empty = tmp_path / "empty.txt"
    empty.write_text("0 2\n")
    with pytest.raises(DataError, match=r"empty.txt:1: header '0 2' announces no vectors"):
        load_word2vec_format(empty)


def test_empty_inputs_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n   \n\t\n")
    for reader, what in ((read_corpus, "no line holds a token"),
                         (read_fasttext, "no labelled line")):
        with pytest.raises(DataError, match=rf"{path}: {what}; expected a non-empty file"):
            reader(path)
    labels_only = tmp_path / "labels.txt"
    labels_only.write_text("__label__a\n__label__b\n")
    with pytest.raises(DataError, match=rf"{labels_only}: all 2 labelled lines have labels but "
                                        "no text"):
        read_fasttext(labels_only)
    comments = tmp_path / "comments.conllu"
    comments.write_text("# sent_id = 1\n")
    with pytest.raises(DataError, match=rf"{comments}: no CoNLL-U sentence with a word"):
        read_conllu(comments)
    with pytest.raises(DataError, match=r"vocabulary: no token occurs at least min_count=2 times "
                                        r"\(3 tokens, 3 distinct\)"):
        Vocab.build([["a", "b", "c"]], min_count=2)


def test_empty_corpus_is_refused_before_compiling(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n")
    done = run_command(["--config=experiments/language_model.py", f"--workdir={tmp_path / 'run'}",
                        f"--config.data.corpus={corpus}"], timeout=300)
    assert done.returncode == 2
    assert f"error: {corpus}: no line holds a token" in done.stderr
    assert not (tmp_path / "run" / "config.json").exists()
