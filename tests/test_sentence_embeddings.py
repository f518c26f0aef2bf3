"""Sentence encoders: one embed() API, the per-sentence LM data, an RNN encoder that learns order,
and the word2vec experiment's vectors.txt read by gensim."""

import json

import numpy as np
import pytest
from flax import nnx

from jaxdl.config import default_config
from jaxdl.data.text import Vocab
from jaxdl.errors import ConfigError
from jaxdl.evaluation.sentence_encoders import (MeanPoolEncoder, RNNSentenceEncoder, SIFEncoder,
                                                compare_encoders, random_word_vectors)
from jaxdl.evaluation.word_vectors import WordVectors
from jaxdl.recipes.sentence_encoder import (neighbour_words_dataset, sentence_lm_dataset,
                                          train_rnn_sentence_encoder)
from jaxdl.models.sequence import RNNLanguageModel

SENTENCES = [["the", "car", "is", "not", "blue"], ["a", "red", "car"], ["zzz"], ["blue", "is", "the", "sky"]]


def _vectors():
    words = ["the", "car", "is", "not", "blue", "a", "red", "sky"]
    return WordVectors(words, np.random.default_rng(0).standard_normal((len(words), 6)))


def _lm(vocab, hidden=12):
    return RNNLanguageModel(len(vocab), 8, hidden, rngs=nnx.Rngs(0))


def test_every_encoder_embeds_n_sentences_as_n_by_d_float32():
    vectors = _vectors()
    vocab = Vocab.build(SENTENCES)
    encoders = {
        "mean": (MeanPoolEncoder(vectors), 6),
        "sif": (SIFEncoder(vectors, {w: i + 1 for i, w in enumerate(vectors.words)}, SENTENCES), 6),
        "rnn": (RNNSentenceEncoder(_lm(vocab), vocab, max_len=8, batch_size=3), 12),
        "rnn-mean": (RNNSentenceEncoder(_lm(vocab), vocab, max_len=8, pooling="mean"), 12),
        "rnn-max": (RNNSentenceEncoder(_lm(vocab), vocab, max_len=8, pooling="max"), 12),
        "random": (MeanPoolEncoder(random_word_vectors(vectors.words, 5)), 5),
    }
    for name, (encoder, dim) in encoders.items():
        out = encoder.embed(SENTENCES)
        assert out.shape == (4, dim) and out.dtype == np.float32 and encoder.dim == dim, name
        assert np.all(np.isfinite(out)), name
    for name in ("mean", "sif", "random"):  # no known word: a zero vector
        assert np.all(encoders[name][0].embed(SENTENCES)[2] == 0), name


def test_rnn_mean_pooling_averages_the_states_of_the_real_positions():
    vocab = Vocab.build(SENTENCES)
    model = _lm(vocab)
    ids = vocab.encode(SENTENCES[1], add_bos=True)[None]
    states = np.asarray(model.rnn(model.embed(ids), None))[0]
    encoder = RNNSentenceEncoder(model, vocab, max_len=8, pooling="mean")
    np.testing.assert_allclose(encoder.embed(SENTENCES[1:2])[0], states.mean(0), atol=1e-6)
    np.testing.assert_allclose(RNNSentenceEncoder(model, vocab, max_len=8, pooling="max").embed(SENTENCES[1:2])[0],
                               states.max(0), atol=1e-6)
    with pytest.raises(ConfigError, match=r"pooling='sum': expected one of \('final', 'mean', 'max'\)"):
        RNNSentenceEncoder(model, vocab, pooling="sum")


def test_sif_and_rnn_embed_a_sentence_the_same_whatever_else_is_in_the_call():
    vectors = _vectors()
    vocab = Vocab.build(SENTENCES)
    sif = SIFEncoder(vectors, {w: i + 1 for i, w in enumerate(vectors.words)}, SENTENCES)
    rnn = RNNSentenceEncoder(_lm(vocab), vocab, max_len=8, batch_size=3)
    for encoder in (sif, rnn):
        np.testing.assert_allclose(encoder.embed(SENTENCES[:1])[0], encoder.embed(SENTENCES)[0], atol=1e-6)


def test_rnn_encoder_reads_the_final_state_over_bos_and_the_words():
    vocab = Vocab.build(SENTENCES)
    model = _lm(vocab)
    encoder = RNNSentenceEncoder(model, vocab, max_len=8)
    ids = vocab.encode(SENTENCES[0], add_bos=True)[None]
    _, final = model.rnn(model.embed(ids), None, return_final_state=True)
    np.testing.assert_allclose(encoder.embed(SENTENCES[:1]), np.asarray(final), atol=1e-6)


def test_sentence_lm_dataset_predicts_each_next_word_then_end_of_sentence():
    vocab = Vocab.build(SENTENCES)
    data = sentence_lm_dataset([["a", "red", "car"], [], ["the", "car", "is", "not", "blue"]], vocab,
                               max_len=4, name="train").arrays
    a, red, car, the, is_, not_ = (vocab.index[w] for w in ("a", "red", "car", "the", "is", "not"))
    np.testing.assert_array_equal(data["tokens"], [[2, a, red, car], [2, the, car, is_]])
    np.testing.assert_array_equal(data["y"], [[a, red, car, 3], [the, car, is_, not_]])
    np.testing.assert_array_equal(data["token_mask"], [[1, 1, 1, 1], [1, 1, 1, 1]])


def test_neighbour_words_dataset_targets_the_adjacent_sentences_words_weighted_by_rarity():
    vocab = Vocab.build([["a", "a", "a", "red", "car"]])  # counts: a 3, red 1, car 1
    data = neighbour_words_dataset([["a", "red"], ["car"], ["zzz"]], vocab, max_len=3, name="train").arrays
    a, red, car = (vocab.index[w] for w in ("a", "red", "car"))
    np.testing.assert_array_equal(data["tokens"], [[2, a, red], [2, car, 0], [2, 1, 0]])
    np.testing.assert_array_equal(data["y"], [[0, 0, 0, car, 0, 0], [a, red, 0, 1, 0, 0], [car, 0, 0, 0, 0, 0]])
    weight = {w: 1e-3 / (1e-3 + c / 5) for w, c in (("a", 3), ("car", 1), ("red", 1))}
    np.testing.assert_allclose(data["target_mask"], [[0, 0, 0, weight["car"], 0, 0],
                                                     [weight["a"], weight["red"], 0, 0, 0, 0],
                                                     [weight["car"], 0, 0, 0, 0, 0]], rtol=1e-6)


def test_self_supervised_rnn_encoder_beats_random_mean_pooling_when_order_matters():
    # Two classes with the same bag of words: "<x> before <y>" vs "<y> before <x>".
    rng = np.random.default_rng(0)
    fillers = [f"f{i}" for i in range(10)]

    def sentence(label):
        first, second = ("alpha", "beta") if label == "xy" else ("beta", "alpha")
        return [first, *rng.choice(fillers, 2), second]

    labels = ["xy", "yx"] * 60
    sentences = [sentence(label) for label in labels]
    config = default_config()
    config.optimizer.lr = 1e-2
    config.train.batch_size = 16
    config.train.num_steps = 40
    config.train.steps_per_loop = 20
    config.train.log_every = 20
    config.train.progress_bar = False
    config.train.eval_train = False
    encoder, result = train_rnn_sentence_encoder(sentences, config=config, max_len=6, embed_dim=8,
                                                 hidden_dim=16, min_count=1)
    assert result.steps == 40
    random_mean = MeanPoolEncoder(random_word_vectors(["alpha", "beta", *fillers], 16))
    train, test = (sentences[:80], labels[:80]), (sentences[80:], labels[80:])
    rows = {r["encoder"]: r for r in compare_encoders({"random": random_mean, "rnn": encoder}, train, test)}
    assert rows["random"]["probe_accuracy"] <= 0.7  # a bag of words cannot tell the classes apart
    assert rows["rnn"]["probe_accuracy"] >= 0.95


def test_word2vec_experiment_exports_vectors_that_gensim_reads(tmp_path):
    KeyedVectors = pytest.importorskip("gensim.models").KeyedVectors
    from experiments import word2vec as experiment

    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(30)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words, 8)) for _ in range(200)) + "\n", encoding="utf-8")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# word1\tword2\tscore\nw1\tw2\t3.0\nw3\tw4\t1.0\nw5\tw6\t2.0\nw1\tnope\t1.0\n")
    analogies = tmp_path / "questions.txt"
    analogies.write_text(": section\nw1 w2 w3 w4\nw1 w2 w3 nope\n")
    config = experiment.get_config()
    config.data.corpus = str(corpus)
    config.word2vec.update(dim=8, epochs=1, batch_centres=128, steps_per_call=2)
    config.eval.update(wordsim353=str(pairs), simlex999=str(pairs), analogies=str(analogies),
                       plot_words=("w1", "w2", "w3", "w4"), neighbours_of=("w1",))
    config.train.progress_bar = False
    workdir = tmp_path / "run"
    summary = experiment.run(config, str(workdir))
    loaded = KeyedVectors.load_word2vec_format(str(workdir / "vectors.txt"), binary=False)
    assert loaded.vectors.shape == (30, 8)
    assert summary["evaluation"]["wordsim353"]["pairs"] == 3 and summary["evaluation"]["wordsim353"]["oov"] == 1
    assert summary["evaluation"]["analogies"]["oov"] == 1
    assert (workdir / "plots" / "words_pca.png").exists() and (workdir / "plots" / "words_tsne.png").exists()
    checkpoint_steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert checkpoint_steps[-1] == summary["steps"]
    json.dumps(summary)  # the summary is plain JSON
