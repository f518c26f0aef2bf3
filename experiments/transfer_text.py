"""Pretrained word vectors for a sentence classifier, against random embeddings.

Pretraining (T1): skip-gram word2vec (``jaxdl.word2vec.host_loop``) on a
corpus — ``config.data.corpus`` (a text file or directory, see
``jaxdl.data.text_readers.read_corpus``) or the embedded English corpus, with
every sentence of the classifier's test split removed so that no test text is
seen even without its label.

Downstream (T2): an LSTM classifier (``RNNClassifier``; embedding -> LSTM ->
mean pooling -> linear head) on fastText files ``config.data.train/test`` or
the embedded labelled sentences (as ``experiments/text_classifier.py``), with
5, 10, 20, 50 and all labels per class × seeds, in three modes (Kim 2014's names):

- ``random``: the embedding initialised at random;
- ``static``: the embedding set from the word vectors and frozen;
- ``non_static``: set from the word vectors and fine-tuned.

Words of the classifier's vocabulary missing from the word vectors keep their
random rows. The table reports each mode's mean ± std over seeds and its mean
paired difference from ``random`` with a 95% t-interval.

Run: ``python -m jaxdl.run --config=experiments/transfer_text.py --workdir=DIR``.
"""

from __future__ import annotations

import importlib.util
import os

import jax.numpy as jnp
import numpy as np
from flax import nnx
from ml_collections import ConfigDict

from jaxdl.recipes import composed
from jaxdl.config import default_config
from jaxdl.data.embedded_text import embedded_corpus
from jaxdl.data.sequence_sets import classification_dataset
from jaxdl.data.sources import LabelBudgetSource, draw_k_per_class
from jaxdl.data.text import Vocab
from jaxdl.data.text_readers import read_corpus
from jaxdl.errors import ConfigError
from jaxdl.evaluation.plots import plots_dir
from jaxdl.evaluation.word2vec_format import load_word2vec_format, save_word2vec_format
from jaxdl.models.sequence import RNNClassifier
from jaxdl.word2vec.host_loop import train_word2vec
from jaxdl.train.sequence_tasks import sequence_classification_task
from jaxdl.train.loop import fit
from jaxdl.train.checkpoint import has_checkpoint
from jaxdl.workdir import fit_summary

MODES = ("random", "static", "non_static")


def get_config() -> ConfigDict:
    """The default configuration (labels_per_class 0 means all labels)."""
    config = default_config()
    config.experiment = "transfer_text"
    config.data = dict(train="", test="", corpus="", lower=True, min_count=2, max_len=32,
                       max_per_class=400, test_fraction=0.2, split_seed=0)
    config.model = dict(embed_dim=64, hidden_dim=64, dropout=0.3)
    config.word2vec = dict(epochs=5, window=5, negative=5, min_count=2, sample=1e-3)
    config.optimizer.name = "adam"
    config.optimizer.lr = 2e-3
    config.optimizer.grad_clip_norm = 1.0
    config.train.batch_size = 32
    config.train.eval_batch_size = 256
    config.train.steps_per_loop = 25
    config.train.log_every = 100
    config.downstream = dict(modes=MODES, labels_per_class=(5, 10, 20, 50, composed.ALL_LABELS),
                             seeds=(0, 1, 2), num_steps=300, eval_every=50)
    return config


def _text_classifier():
    """The sibling experiment whose data loading this one shares.

    Loaded by file path, like ``jaxdl.run`` loads experiments (importing
    ``jaxdl.run`` here would define its flags twice when it is ``__main__``).
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "text_classifier.py")
    spec = importlib.util.spec_from_file_location("jaxdl_experiment_text_classifier", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pretraining_corpus(config: ConfigDict, test_sentences) -> list[list[str]]:
    """The word2vec corpus without any sentence of the classifier's test split."""
    corpus = (read_corpus(config.data.corpus, lower=config.data.lower) if config.data.corpus
              else embedded_corpus())
    held_out = {tuple(s) for s in test_sentences}
    return [s for s in corpus if tuple(s) not in held_out]


def set_embedding(model: RNNClassifier, vocab: Vocab, vectors_path: str) -> dict:
    """Copy word vectors into ``model.embed`` for the words they cover.

    Returns:
      ``{"covered": n, "vocab_size": V}`` (uncovered rows keep their random init).
    Raises:
      ConfigError: the vectors' size differs from ``model.embed``'s.
    """
    vectors = load_word2vec_format(vectors_path)
    table = np.array(model.embed.embedding[...])  # a writable host copy
    if vectors.vectors.shape[1] != table.shape[1]:
        raise ConfigError(f"word vectors in {vectors_path} have {vectors.vectors.shape[1]} "
                          f"dimensions; expected config.model.embed_dim={table.shape[1]}")
    rows = [(i, vectors.index[t]) for i, t in enumerate(vocab.tokens) if t in vectors.index]
    if rows:
        ours, theirs = map(np.asarray, zip(*rows))
        table[ours] = vectors.vectors[theirs]
    model.embed.embedding[...] = jnp.asarray(table)
    return {"covered": len(rows), "vocab_size": len(vocab)}


def run(config: ConfigDict, workdir: str | None) -> dict:
    """Pretrain, run every mode × budget × seed, aggregate; returns the summary.

    Sub-runs live in ``workdir/pretrain`` and ``workdir/runs/*``; finished ones
    are skipped on a re-run, an interrupted one resumes.
    """
    if not workdir:
        raise ConfigError("transfer_text is a composed experiment; expected --workdir=DIR")
    workdir = os.path.abspath(workdir)
    train_split, test_split = _text_classifier().load_splits(config)
    classes = sorted(set(train_split[1]))
    vocab = Vocab.build(train_split[0], min_count=config.data.min_count)
    pool = classification_dataset(*train_split, vocab, classes, max_len=config.data.max_len,
                                  name="train")
    test = classification_dataset(*test_split, vocab, classes, max_len=config.data.max_len,
                                  name="test")
    task = sequence_classification_task()
    ds = config.downstream

    def pretrain_fn(sub: ConfigDict, sub_dir: str) -> dict:
        corpus = pretraining_corpus(config, test_split[0])
        vectors = train_word2vec(corpus, progress=False, dim=sub.model.embed_dim,
                                 seed=sub.seed, **sub.word2vec.to_dict())
        save_word2vec_format(os.path.join(sub_dir, "vectors.txt"), vectors.words, vectors.vectors)
        return {"experiment": f"{config.experiment}/word2vec", "seed": sub.seed,
                "metrics": {"corpus": {"sentences": len(corpus),
                                       "tokens": sum(len(s) for s in corpus),
                                       "vocab_size": len(vectors.words)}},
                "vectors": "vectors.txt"}

    pretrain_cfg = default_config()
    pretrain_cfg.experiment = config.experiment
    pretrain_cfg.seed = config.seed
    pretrain_cfg.data = ConfigDict(config.data.to_dict())
    pretrain_cfg.model = ConfigDict(config.model.to_dict())
    pretrain_cfg.word2vec = ConfigDict(config.word2vec.to_dict())
    vectors_path = os.path.join(workdir, "pretrain", "vectors.txt")

    def make_config(mode: str, labels: int, seed: int) -> ConfigDict:
        sub = ConfigDict(config.to_dict())
        del sub["downstream"]
        sub.seed, sub.mode, sub.labels_per_class = int(seed), mode, int(labels)
        sub.train.num_steps, sub.train.eval_every = ds.num_steps, ds.eval_every
        sub.train.progress_bar, sub.train.eval_train = False, False
        sub.transfer.init_from = "" if mode == "random" else vectors_path
        sub.transfer.frozen = ("^embed/",) if mode == "static" else ()
        return sub

    def downstream_fn(sub: ConfigDict, sub_dir: str) -> dict:
        m = sub.model
        model = RNNClassifier(len(vocab), len(classes), m.embed_dim, m.hidden_dim, cell="lstm",
                              pooling="mean", dropout=m.dropout, rngs=nnx.Rngs(sub.seed))
        coverage = None
        if sub.transfer.init_from and not has_checkpoint(sub_dir):
            coverage = set_embedding(model, vocab, sub.transfer.init_from)
        indices = draw_k_per_class(pool.arrays["y"], sub.labels_per_class, sub.seed)
        source = LabelBudgetSource(pool, indices, sub.train.batch_size, seed=sub.seed)
        result = fit(model, task, source, config=sub, eval_data={"test": test}, workdir=sub_dir)
        return fit_summary(f"{config.experiment}/{sub.mode}", result, sub, mode=sub.mode,
                           labels_per_class=sub.labels_per_class, train_examples=len(indices),
                           embedding_coverage=coverage)

    with composed.shared_compilation_cache():
        pretrain = composed.run_subrun(workdir, "pretrain", pretrain_cfg, pretrain_fn)
        results = composed.run_sweep(workdir, modes=ds.modes, budgets=ds.labels_per_class,
                                     seeds=ds.seeds, make_config=make_config,
                                     train_fn=downstream_fn)
    table = composed.aggregate(results, baseline="random")
    markdown = composed.table_markdown(table, baseline="random")
    composed.write_table_files(
        workdir, f"## Test accuracy after {ds.num_steps} steps (word2vec vs random "
                 f"embeddings)\n\n{markdown}")
    per_class = len(pool) / len(classes)
    composed.plot_by_mode(table, "labels_per_class",
                          os.path.join(plots_dir(workdir), "accuracy_vs_labels.png"),
                          x_of=lambda k: per_class if k == "all" else float(k),
                          xlabel="labels per class (log; rightmost: all)", logx=True,
                          title="LSTM classifier: word2vec vs random embeddings")
    return composed.composed_summary(
        config.experiment, config,
        [{k: r[k] for k in ("mode", "labels_per_class", "seed", "workdir")} for r in results],
        table, markdown, metrics={"word2vec": pretrain["metrics"]["corpus"]},
        pretrain={"workdir": "pretrain", "vectors": "pretrain/vectors.txt"},
        classes=classes, vocab_size=len(vocab))
