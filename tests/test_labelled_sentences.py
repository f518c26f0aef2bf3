"""Labelled sentence files: ``<label> <sentence>`` and fastText lines, and a cut of a set
that comes without a test split (Subj)."""

from __future__ import annotations

import pytest
from ml_collections import ConfigDict

from jaxdl.errors import ConfigError, DataError
from jaxdl.data.formats.labelled_sentences import load_sentence_splits, read_labelled_text


def data_config(train, test="", **keys) -> ConfigDict:
    return ConfigDict(dict(train=str(train), test=str(test), format="auto", encoding="utf-8",
                           test_fraction=0.2, split_seed=0, **keys))


def test_label_first_and_fasttext_lines_are_detected(tmp_path):
    kim = tmp_path / "kim.txt"
    kim.write_text("1 a gripping , funny film .\n\n0 dull .\n")
    fast = tmp_path / "fast.txt"
    fast.write_text("__label__pos __label__x a gripping film\n__label__neg dull\n")
    assert read_labelled_text(str(kim)) == (["a gripping , funny film .", "dull ."], ["1", "0"])
    assert read_labelled_text(str(fast)) == (["a gripping film", "dull"], ["pos", "neg"])
    # Forced to label_first, a fastText file keeps its first field as the label.
    assert read_labelled_text(str(fast), "label_first")[1] == ["__label__pos", "__label__neg"]


def test_a_label_alone_is_an_empty_sentence_and_a_file_without_sentences_is_refused(tmp_path):
    path = tmp_path / "subj.all"
    path.write_text("1 fine\n0\n")
    assert read_labelled_text(str(path)) == (["fine", ""], ["1", "0"])
    path.write_text("1\n0\n")
    with pytest.raises(DataError, match=f"{path}: no labelled sentence"):
        read_labelled_text(str(path))


def test_a_set_without_test_file_is_cut_per_class_by_the_stated_seed(tmp_path):
    path = tmp_path / "subj.all"
    path.write_text("".join(f"{i % 2} sentence number {i}\n" for i in range(50)))
    train, test, about = load_sentence_splits(data_config(path))
    assert len(test[0]) == 10 and sorted(test[1]) == ["0"] * 5 + ["1"] * 5
    assert sorted(train[0] + test[0]) == sorted(f"sentence number {i}" for i in range(50))
    assert about["test"] == "cut from train" and about["split_seed"] == 0
    assert load_sentence_splits(data_config(path))[1] == test  # the same cut every time
    other = ConfigDict({**data_config(path).to_dict(), "split_seed": 1})
    assert load_sentence_splits(other)[1] != test


@pytest.mark.parametrize("keys", [dict(train=""), dict(test="/no/such/test.txt"),
                                  dict(format="csv")])
def test_bad_data_keys_are_config_errors(tmp_path, keys):
    path = tmp_path / "train.txt"
    path.write_text("1 fine\n")
    config = ConfigDict({**data_config(path).to_dict(), **keys})
    with pytest.raises(ConfigError, match="config.data"):
        load_sentence_splits(config)


def test_lines_break_at_newlines_only(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"0 a dud \x85 true story\r\n1 fine\r0 old mac\n")  # \x85: cp1252's "..."
    sentences, labels = read_labelled_text(str(path), encoding="latin-1")
    assert sentences == ["a dud \x85 true story", "fine", "old mac"] and labels == ["0", "1", "0"]
