"""word2vec (skip-gram, negative sampling) trained through fit, evaluated, plotted and exported.

Data: `config.data.corpus` (a text file or a directory of them, one sentence per
line, lower-cased), or by default the embedded English corpus of the Python
documentation (`jaxdl.data.embedded_text`, ≈227k tokens, ships with Python).

Evaluation: Spearman correlation on the word-pair files `config.eval.wordsim353`
and `config.eval.simlex999`, 3CosAdd accuracy on `config.eval.analogies`
(questions-words.txt format); empty paths default to gensim's test data files
when gensim is installed. Out-of-vocabulary counts are always reported. Nearest
neighbours of `config.eval.neighbours_of`, PCA and t-SNE plots of
`config.eval.plot_words` (those in the vocabulary) under `plots/`, and the input
vectors exported to `vectors.txt` (word2vec text format).

Expected (2-core CPU, default corpus): about a minute of training; the Python
documentation is not general English, so most WordSim353 / SimLex-999 pairs are
out of vocabulary and their correlations are small (see docs/EMBEDDING_RESULTS.md).
"""

from __future__ import annotations

import os

from jaxdl.config import default_config
from jaxdl.data.embedded_text import embedded_corpus
from jaxdl.data.text_readers import read_corpus
from jaxdl.errors import DataError
from jaxdl.evaluation.analogy import evaluate_analogies
from jaxdl.evaluation.plots import plot_learning_curves, plots_dir
from jaxdl.evaluation.projection import plot_word_projection
from jaxdl.evaluation.word2vec_format import save_word2vec_format
from jaxdl.evaluation.word_similarity import evaluate_word_pairs
from jaxdl.word2vec.corpus import Word2VecCorpus
from jaxdl.word2vec.training import fit_word2vec_model, word2vec_fit_config
from jaxdl.word2vec.host_loop import Word2VecSettings
from jaxdl.workdir import fit_summary

GENSIM_TEST_FILES = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt",
                     "analogies": "questions-words.txt"}
PLOT_WORDS = ("file", "directory", "path", "string", "bytes", "list", "dict", "tuple", "integer", "float",
              "socket", "server", "client", "thread", "process", "lock", "error", "exception", "warning",
              "read", "write", "open", "close", "send", "receive", "true", "false", "none")


def get_config():
    config = default_config()
    config.experiment = "word2vec"
    config.data = dict(corpus="", lower=True, encoding="utf-8")
    config.word2vec = dict(dim=100, window=5, negative=5, min_count=5, sample=1e-3, alpha=0.025,
                           min_alpha=1e-4, epochs=5, sg=True, shared_negatives=True, row_cap=16.0,
                           batch_centres=1024, steps_per_call=16)
    config.eval = dict(wordsim353="", simlex999="", analogies="", analogy_restrict_vocab=30000,
                       neighbours_of=("file", "thread", "error", "string"), num_neighbours=8,
                       plot_words=PLOT_WORDS)
    config.train.log_every = 64
    config.checkpoint.every_steps = 512
    return config


def evaluation_files(config) -> dict[str, str]:
    """Configured pair/analogy files; empty entries fall back to gensim's test data if installed."""
    files = {}
    for name, default in GENSIM_TEST_FILES.items():
        path = config.eval[name]
        if not path:
            try:
                from gensim.test.utils import datapath
            except ImportError:
                continue
            path = datapath(default)
        if not os.path.exists(path):
            raise DataError(f"config.eval.{name}={path!r}: no such file; expected a "
                            f"{'questions-words' if name == 'analogies' else 'word-pair'} file")
        files[name] = path
    return files


def evaluate(vectors, config) -> dict:
    """Similarity Spearman, analogy accuracy (with OOV counts) and nearest neighbours."""
    results = {}
    for name, path in evaluation_files(config).items():
        if name == "analogies":
            scores = evaluate_analogies(vectors, path, restrict_vocab=config.eval.analogy_restrict_vocab)
            results[name] = {"file": path, "accuracy": scores["accuracy"], "questions": scores["questions"],
                             "oov": scores["oov"], "oov_ratio": scores["oov_ratio"], "sections": scores["sections"]}
        else:
            try:
                scores = evaluate_word_pairs(vectors, path)
            except DataError as err:  # every pair out of vocabulary: report, don't fail the run
                results[name] = {"file": path, "spearman": None, "error": str(err)}
                continue
            results[name] = {"file": path, **{k: scores[k] for k in ("spearman", "pearson", "pairs", "oov",
                                                                      "oov_ratio")}}
    results["neighbours"] = {
        word: [w for w, _ in vectors.most_similar(word, topn=config.eval.num_neighbours)]
        for word in config.eval.neighbours_of if word in vectors}
    return results


def plot_words(vectors, config, workdir: str) -> dict:
    """PCA and t-SNE PNGs of the configured words found in the vocabulary."""
    words = [w for w in config.eval.plot_words if w in vectors]
    if len(words) < 3:  # a corpus without them: show frequent non-stop words instead
        words = vectors.words[50:80]
    paths = {}
    for method in ("pca", "tsne"):
        path = os.path.join(plots_dir(workdir), f"words_{method}.png")
        plot_word_projection(vectors, words, path, method=method, seed=0)
        paths[method] = path
    return {"words": words, "files": paths}


def run(config, workdir: str | None):
    sentences = (read_corpus(config.data.corpus, lower=config.data.lower,
                             encoding=config.data.encoding) if config.data.corpus
                 else embedded_corpus())
    settings = Word2VecSettings(**config.word2vec.to_dict(), seed=config.seed)
    corpus = Word2VecCorpus.from_sentences(sentences, min_count=settings.min_count)
    result, vectors = fit_word2vec_model(corpus, settings, config=word2vec_fit_config(settings, base=config),
                                         workdir=workdir)
    evaluation = evaluate(vectors, config)
    extra = {}
    if workdir:
        extra["vectors_file"] = os.path.join(workdir, "vectors.txt")
        save_word2vec_format(extra["vectors_file"], vectors.words, vectors.vectors)
        extra["plots"] = plot_words(vectors, config, workdir)
        plot_learning_curves(result.history, os.path.join(plots_dir(workdir), "loss.png"))
    train_events = [e for e in result.history if e["split"] == "train"]
    last = {k: v for k, v in train_events[-1].items() if k not in ("step", "split")} if train_events else {}
    seconds = result.wall_seconds
    corpus_info = {"source": config.data.corpus or "embedded", "raw_tokens": corpus.raw_words,
                   "tokens": corpus.num_tokens, "vocab": len(corpus.words),
                   "words_per_second": corpus.num_tokens * settings.epochs / seconds if seconds else None}
    summary = fit_summary(config.experiment, result, config, corpus=corpus_info, evaluation=evaluation, **extra)
    summary["metrics"] = {"train": last, **{name: {"spearman": r["spearman"]} for name, r in evaluation.items()
                                            if name in ("wordsim353", "simlex999")}}
    if "analogies" in evaluation:
        summary["metrics"]["analogies"] = {"accuracy": evaluation["analogies"]["accuracy"]}
    return summary
