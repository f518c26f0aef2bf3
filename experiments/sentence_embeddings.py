"""Sentence encoders compared on a linear probe and nearest-sentence retrieval.

Data (embedded, ships with Python): the labelled docstring sentences of ten
standard-library packages (`embedded_labelled_sentences`, the label is the
package), split 80/20 stratified. The self-supervised models (word2vec and the
RNN language model) train on the embedded English corpus with the held-out
test sentences removed, so no encoder has seen a test sentence.

Encoders, all through one API `embed(sentences) -> [n, d]`:

* mean of random word vectors (Gaussian, over word2vec's vocabulary), at d = 100
  and at d = the RNN's hidden size;
* mean of trained word2vec vectors (skip-gram, through `fit`);
* SIF of the word2vec vectors (common component fitted on the training corpus);
* the RNN encoder: an LSTM over `<s> w1 … wn` trained self-supervised
  (`config.rnn.objective`: `"neighbour_words"`, the final state predicts the
  words of the previous and next sentence; or `"next_word"`, per-sentence
  language modelling), read as its final state, or the mean / max of its states.

Measured probe accuracies are in docs/EMBEDDING_RESULTS.md.
"""

from __future__ import annotations

import collections
import os

from jaxdl.config import default_config
from jaxdl.data.stdlib_corpus import embedded_corpus, embedded_labelled_sentences, split_labelled
from jaxdl.evaluation.sentence_encoders import (MeanPoolEncoder, RNNSentenceEncoder, SIFEncoder,
                                                compare_encoders, random_word_vectors)
from jaxdl.evaluation.plots import plot_learning_curves, plots_dir
from jaxdl.recipes.sentence_encoder import train_rnn_sentence_encoder
from jaxdl.word2vec.corpus import Word2VecCorpus
from jaxdl.word2vec.settings import Word2VecSettings, word2vec_config
from jaxdl.word2vec.training import fit_word2vec_model, word2vec_fit_config
from jaxdl.config_schema import reads_transfer


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = reads_transfer("frozen", "lr_multipliers")


def get_config():
    config = default_config()
    config.experiment = "sentence_embeddings"
    config.data = dict(max_per_class=400, test_fraction=0.2, split_seed=0)
    # streams=1, batch_centres=1024: docs/EMBEDDING_RESULTS.md's probe table was measured
    # with them (the library defaults before streams=16 and 4096; not yet re-run here).
    config.word2vec = word2vec_config(streams=1, batch_centres=1024)
    config.rnn = dict(cell="lstm", embed_dim=64, hidden_dim=128, max_vocab=6000, min_count=2, max_len=24,
                      objective="neighbour_words")
    config.optimizer.update(name="adam", lr=3e-3, grad_clip_norm=1.0, schedule="cosine", min_lr_ratio=0.1)
    config.train.update(batch_size=32, num_steps=3000, num_epochs=0, log_every=100, steps_per_loop=25,
                        eval_every=0, eval_train=False)
    config.checkpoint.every_steps = 500
    return config


def train_word2vec(corpus_sentences, config, workdir):
    """Skip-gram vectors through fit (its own sub-workdir, so it resumes separately)."""
    settings = Word2VecSettings.from_config(config)
    corpus = Word2VecCorpus.from_sentences(corpus_sentences, min_count=settings.min_count)
    w2v_config = word2vec_fit_config(settings)
    w2v_config.train.log_every = 100
    result, vectors = fit_word2vec_model(corpus, settings, config=w2v_config,
                                         workdir=os.path.join(workdir, "word2vec") if workdir else None)
    return vectors, dict(zip(corpus.words, corpus.counts.tolist())), result


def run(config, workdir: str | None):
    sentences, labels = embedded_labelled_sentences(max_per_class=config.data.max_per_class)
    train, test = split_labelled(sentences, labels, test_fraction=config.data.test_fraction,
                                 seed=config.data.split_seed)
    held_out = {tuple(s) for s in test[0]}  # no encoder trains on a probe test sentence
    corpus_sentences = [s for s in embedded_corpus() if tuple(s) not in held_out]
    vectors, counts, w2v_result = train_word2vec(corpus_sentences, config, workdir)
    rnn = config.rnn
    rnn_workdir = os.path.join(workdir, "rnn") if workdir else None
    encoder, rnn_result = train_rnn_sentence_encoder(
        corpus_sentences, config=config, workdir=rnn_workdir, max_vocab=rnn.max_vocab,
        min_count=rnn.min_count, max_len=rnn.max_len, embed_dim=rnn.embed_dim,
        hidden_dim=rnn.hidden_dim, cell=rnn.cell, objective=rnn.objective)
    encoders = {
        f"mean of random vectors (d={vectors.dim})": MeanPoolEncoder(
            random_word_vectors(vectors.words, vectors.dim, seed=config.seed)),
        f"mean of random vectors (d={encoder.dim})": MeanPoolEncoder(
            random_word_vectors(vectors.words, encoder.dim, seed=config.seed)),
        "mean of word2vec vectors": MeanPoolEncoder(vectors),
        "SIF of word2vec vectors": SIFEncoder(vectors, counts, corpus_sentences),
        f"RNN encoder ({rnn.cell}, final state)": encoder,
        f"RNN encoder ({rnn.cell}, mean of states)": RNNSentenceEncoder(
            rnn_result.model, encoder.vocab, max_len=rnn.max_len, pooling="mean"),
        f"RNN encoder ({rnn.cell}, max of states)": RNNSentenceEncoder(
            rnn_result.model, encoder.vocab, max_len=rnn.max_len, pooling="max"),
    }
    rows = compare_encoders(encoders, train, test)
    if workdir:
        plot_learning_curves(rnn_result.history, os.path.join(plots_dir(workdir), "rnn_loss.png"))
    by_name = {row["encoder"]: row for row in rows}
    random_probe = by_name[f"mean of random vectors (d={vectors.dim})"]["probe_accuracy"]
    rnn_probe = by_name[f"RNN encoder ({rnn.cell}, final state)"]["probe_accuracy"]
    return {
        "experiment": config.experiment,
        "metrics": {"test": {"rnn_probe_accuracy": rnn_probe, "random_mean_probe_accuracy": random_probe}},
        "baselines": {},
        "table": rows,
        "data": {"train_sentences": len(train[0]), "test_sentences": len(test[0]),
                 "classes": len(set(labels)), "majority_class": max(collections.Counter(test[1]).values())
                 / len(test[1]), "corpus_sentences": len(corpus_sentences)},
        "runs": {"word2vec": {"workdir": os.path.join(workdir, "word2vec") if workdir else None,
                              "steps": w2v_result.steps, "params_sha256": w2v_result.params_sha256,
                              "wall_seconds": round(w2v_result.wall_seconds, 3)},
                 "rnn": {"workdir": rnn_workdir, "steps": rnn_result.steps, "metrics": rnn_result.metrics,
                         "params_sha256": rnn_result.params_sha256,
                         "wall_seconds": round(rnn_result.wall_seconds, 3)}},
        "rnn_beats_random_mean": rnn_probe > random_probe,
        "seed": config.seed,
        "params_sha256": rnn_result.params_sha256,
        "num_params": rnn_result.num_params,
        "steps": rnn_result.steps,
    }
