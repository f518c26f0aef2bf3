"""Small or odd text: refused before training naming the file and what is needed;
test-only labels and tags never change a model's shape (issue 28, class G)."""

from __future__ import annotations

import re

import pytest

from conftest import load_experiment
from formats import fasttext_line, write_conllu_rows
from jaxdl.errors import DataError

SENTENCES = [["the", "cat", "sat"], ["a", "dog", "ran"], ["the", "dog", "sat"],
             ["a", "cat", "ran"], ["the", "cat", "ran"], ["a", "dog", "sat"]]


def word_pair_file(path, pairs) -> str:
    path.write_text("# word1\tword2\tscore\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in pairs))
    return str(path)


def tiny_word2vec(tmp_path, corpus_text: str, **word2vec):
    experiment = load_experiment("word2vec")
    config = experiment.get_config()
    (tmp_path / "corpus.txt").write_text(corpus_text)
    config.data.corpus = str(tmp_path / "corpus.txt")
    config.word2vec.update(dict(dim=8, epochs=1, min_count=1, batch_centres=16, streams=1,
                                steps_per_call=1), **word2vec)
    config.eval.wordsim353 = config.eval.simlex999 = word_pair_file(
        tmp_path / "pairs.tsv", [("cat", "dog", 7.0), ("tiger", "lion", 9.0), ("car", "road", 3.0)])
    config.eval.analogies = str(tmp_path / "analogies.txt")
    (tmp_path / "analogies.txt").write_text(": family\nboy girl brother sister\n")
    config.train.progress_bar = False
    return experiment, config


def test_issue_example_word2vec_on_a_15_word_corpus_runs_through_its_evaluation(tmp_path):
    corpus = "the cat sat on the mat and the dog sat on the log with a cat\n"
    assert len(corpus.split()) == 16
    experiment, config = tiny_word2vec(tmp_path, corpus)
    summary = experiment.run(config, None)  # without a workdir: no plots, the test stays fast
    similarity = summary["evaluation"]["wordsim353"]
    assert similarity["spearman"] is None  # one pair in the vocabulary: nothing to correlate
    assert "only 1 word pair in the vocabulary" in similarity["error"]
    assert summary["corpus"]["vocab"] == 10


@pytest.mark.parametrize("corpus,settings,needed", [
    ("cat\ndog\ncat\nmat\n", {}, r"no sentence holds two vocabulary words .*needs at least one "
                                 r"sentence with two"),
    ("cat dog\ncat dog\n", {}, r"2 word\(s\) occur min_count=1 times.*the PCA and t-SNE plots .*"
                               r"need\(s\) at least 3 vocabulary words"),
    ("the cat sat on the mat\n", {"min_count": 3}, r"no word occurs at least min_count=3 times"),
    ("the cat\nthe dog\n", {"min_count": 2},
     r"no sentence holds two vocabulary words \(1 word\(s\) occur min_count=2 times"),
])
def test_a_corpus_too_small_for_any_step_is_refused_before_training(tmp_path, corpus, settings,
                                                                    needed):
    experiment, config = tiny_word2vec(tmp_path, corpus, **settings)
    with pytest.raises(DataError, match=re.escape(config.data.corpus) + ": " + needed):
        experiment.run(config, str(tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


# --- labels and tags come from training data --------------------------------------------

def write_fasttext(path, rows) -> str:
    path.write_text("".join(fasttext_line([label], words) for label, words in rows))
    return str(path)


def text_setup(tmp_path, experiment_name: str, source: str, problem: str):
    """An experiment's config over tiny train/test files with one ``problem``."""
    tagging = experiment_name == "pos_tagger"
    labels = ["only"] * 6 if problem == "one label" else ["a", "b"] * 3
    test_label = "zzz" if problem == "test-only label" else "a"
    train, test = tmp_path / "train.data", tmp_path / "test.data"
    if tagging:
        write_conllu_rows(train, [[(w, labels[i]) for w in s] for i, s in enumerate(SENTENCES)], "tr")
        write_conllu_rows(test, [[("the", "a"), ("cat", test_label)]], "te")
    else:
        write_fasttext(train, list(zip(labels, SENTENCES)))
        write_fasttext(test, [(test_label, ["the", "cat"]), ("a", ["a", "dog"])])
    experiment = load_experiment(experiment_name)
    config = experiment.get_config()
    config.data.train, config.data.test = str(train), str(test)
    config.data.min_count = 99 if problem == "vocabulary of only <unk>" else 1
    if source == "stream":
        config.data.source = "stream"
    config.train.update(batch_size=2, num_steps=2, num_epochs=0, progress_bar=False,
                        steps_per_loop=1, log_every=1, eval_every=0)
    return experiment, config, str(train), str(test)


EXPERIMENTS = [("text_classifier", "arrays"), ("text_classifier", "stream"),
               ("transfer_text", "arrays"), ("pos_tagger", "arrays"), ("pos_tagger", "stream")]


@pytest.mark.parametrize("problem", ["test-only label", "one label", "vocabulary of only <unk>"])
@pytest.mark.parametrize("name,source", EXPERIMENTS)
def test_small_or_odd_training_text_is_refused_naming_the_file(tmp_path, name, source, problem):
    experiment, config, train, test = text_setup(tmp_path, name, source, problem)
    kind = "tag" if name == "pos_tagger" else "label"
    expected = {
        "test-only label": re.escape(test) + rf": {kind}\(s\) \['zzz'\] never occur in the "
                           rf"training data {re.escape(train)}; expected only its 2 {kind}s",
        "one label": re.escape(train) + rf": 1 distinct {kind}\(s\) in the training data "
                     r"\['only'\]; expected at least 2",
        "vocabulary of only <unk>": re.escape(train) + r": no token occurs at least "
                                    r"min_count=99 times",
    }[problem]
    with pytest.raises(DataError, match=expected):
        experiment.run(config, str(tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_issue_example_a_test_only_tag_never_changes_the_taggers_shape(tmp_path):
    experiment, config, _, test = text_setup(tmp_path, "pos_tagger", "arrays", "test-only label")
    with pytest.raises(DataError, match=re.escape(test) + r": tag\(s\) \['zzz'\]"):
        experiment.run(config, None)
    experiment, config, _, _ = text_setup(tmp_path, "pos_tagger", "arrays", "clean")
    write_conllu_rows(tmp_path / "test.data", [[("the", "b")]], "te")  # one training tag only
    vocab, tags, _, train, eval_data, _, _ = experiment.arrays_data(config)
    assert tags == ["a", "b"]  # the model's outputs: the training tags, not the test file's
    assert int(eval_data["test"].arrays["y"][0, 0]) == 1
