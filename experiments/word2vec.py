"""word2vec (skip-gram or CBOW, negative sampling) trained through fit, evaluated, plotted and exported.

Data: `config.data.corpus` (a text file or a directory of them, plain or gzip,
one sentence per line, read as a stream; `config.data.source="stream"` keeps the
encoded corpus on the host and ships each step's chunk, the same batches), or by default the embedded English corpus of the Python documentation
(`jaxdl.data.stdlib_corpus`, ships with Python). Hyper-parameters: the
`config.word2vec` section (`jaxdl.word2vec.settings.word2vec_config`).

Evaluation: Spearman ρ on `config.eval.wordsim353` / `config.eval.simlex999` and
3CosAdd accuracy on `config.eval.analogies`; empty paths default to gensim's test
data when gensim is installed; in-vocabulary counts are always reported. Nearest
neighbours of `config.eval.neighbours_of`, PCA and t-SNE plots of
`config.eval.plot_words` under `plots/`, and the input vectors in `vectors.txt`
(word2vec text format). The Python documentation is not general English: most
WordSim353 / SimLex-999 pairs are out of its vocabulary (docs/EMBEDDING_RESULTS.md).
"""

from __future__ import annotations

import os
import sys

from jaxdl.config import default_config
from jaxdl.config_schema import CORE_SCHEMA, not_read
from jaxdl.data.stdlib_corpus import embedded_corpus
from jaxdl.evaluation.plots import plot_learning_curves, plots_dir
from jaxdl.evaluation.projection import plot_word_projection
from jaxdl.evaluation.word2vec_format import save_word2vec_format
from jaxdl.word2vec.corpus import Word2VecCorpus, stream_sentences
from jaxdl.word2vec.evaluation import benchmark_files, evaluate_word_vectors
from jaxdl.word2vec.settings import Word2VecSettings, word2vec_config
from jaxdl.word2vec.training import fit_word2vec_model, word2vec_fit_config
from jaxdl.workdir import fit_summary

PLOT_WORDS = ("file", "directory", "path", "string", "bytes", "list", "dict", "tuple", "integer", "float",
              "socket", "server", "client", "thread", "process", "lock", "error", "exception", "warning",
              "read", "write", "open", "close", "send", "receive", "true", "false", "none")


# Keys this experiment does not read (any value but the default is refused: it would do
# nothing): word2vec's own settings (config.word2vec) give the learning rate and the
# run's length, batch and dispatch size, and no transfer key applies.
CONFIG_SCHEMA = {
    **{k: not_read("word2vec's own update, at word2vec.alpha, replaces the optimizer")
       for k in CORE_SCHEMA if k.startswith("optimizer.")},
    **{f"train.{k}": not_read(f"word2vec.{w} sets it") for k, w in (
        ("num_steps", "epochs"), ("num_epochs", "epochs"), ("batch_size", "batch_centres"),
        ("steps_per_loop", "steps_per_call"))},
}


def get_config():
    config = default_config()
    config.experiment = "word2vec"
    config.data = dict(corpus="", lower=True, encoding="utf-8", source="arrays")
    config.word2vec = word2vec_config()
    config.eval = dict(wordsim353="", simlex999="", analogies="", analogy_restrict_vocab=30000,
                       neighbours_of=("file", "thread", "error", "string"), num_neighbours=8,
                       plot_words=PLOT_WORDS)
    config.train.log_every = 64
    config.checkpoint.every_steps = 512
    return config


def plot_words(vectors, config, workdir: str) -> dict:
    """PCA and t-SNE PNGs of the configured words found in the vocabulary."""
    words = [w for w in config.eval.plot_words if w in vectors]
    if len(words) < 3:  # a corpus without them: show frequent non-stop words instead
        words = vectors.words[50:80] if len(vectors.words) >= 53 else vectors.words[:30]
    paths = {}
    for method in ("pca", "tsne"):
        path = os.path.join(plots_dir(workdir), f"words_{method}.png")
        plot_word_projection(vectors, words, path, method=method, seed=0)
        paths[method] = path
    return {"words": words, "files": paths}


def run(config, workdir: str | None):
    settings = Word2VecSettings.from_config(config)
    sentences = (stream_sentences(config.data.corpus, lower=config.data.lower, encoding=config.data.encoding)
                 if config.data.corpus else embedded_corpus())
    corpus = Word2VecCorpus.from_sentences(sentences, min_count=settings.min_count,
                                           source=config.data.corpus or "the embedded corpus")
    # Every later step's needs, before training: the plots project 3 words or more.
    corpus.check_trainable(min_count=settings.min_count, min_words=3 if workdir else 1,
                           needed_by="the PCA and t-SNE plots (written with a workdir)")
    result, vectors = fit_word2vec_model(corpus, settings, config=word2vec_fit_config(settings, base=config),
                                         workdir=workdir, source=config.data.source)
    files = benchmark_files({name: config.eval[name] for name in ("wordsim353", "simlex999", "analogies")})
    evaluation = evaluate_word_vectors(vectors, files, analogy_restrict_vocab=config.eval.analogy_restrict_vocab)
    evaluation["neighbours"] = {word: [w for w, _ in vectors.most_similar(word, topn=config.eval.num_neighbours)]
                                for word in config.eval.neighbours_of if word in vectors}
    extra = {}
    if workdir:
        extra["vectors_file"] = os.path.join(workdir, "vectors.txt")
        save_word2vec_format(extra["vectors_file"], vectors.words, vectors.vectors)
        print("plotting word projections (PCA, t-SNE)...", file=sys.stderr, flush=True)
        extra["plots"] = plot_words(vectors, config, workdir)
        plot_learning_curves(result.history, os.path.join(plots_dir(workdir), "loss.png"))
    train_events = [e for e in result.history if e["split"] == "train"]
    last = {k: v for k, v in train_events[-1].items() if k not in ("step", "split")} if train_events else {}
    seconds = result.wall_seconds
    corpus_info = {"source": config.data.corpus or "embedded", "raw_tokens": corpus.raw_words,
                   "tokens": corpus.num_tokens, "vocab": len(corpus.words),
                   "words_per_second": corpus.num_tokens * settings.epochs / seconds if seconds else None}
    summary = fit_summary(config.experiment, result, config, corpus=corpus_info, evaluation=evaluation, **extra)
    summary["metrics"] = {"train": last, **{name: {"spearman": evaluation[name]["spearman"]}
                                            for name in ("wordsim353", "simlex999") if name in evaluation}}
    if "analogies" in evaluation:
        summary["metrics"]["analogies"] = {"accuracy": evaluation["analogies"]["accuracy"]}
    return summary
