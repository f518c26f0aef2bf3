"""Pretrained word vectors (or a language model) for a sentence classifier, against random init.

Pretraining (T1): skip-gram word2vec trained through ``fit``
(``jaxdl.word2vec.training``; checkpointed, so a killed run resumes) on
``config.data.corpus`` (a text file or directory) or the embedded English corpus,
with every sentence of the classifier's test split removed, so that no test text
is seen even without its label.

Downstream (T2): an LSTM classifier (embedding -> LSTM -> mean pooling -> linear
head) on fastText files ``config.data.train/test`` or the embedded labelled
sentences, with 5, 10, 20, 50 and all labels per class × seeds, in three modes
(Kim 2014's names): ``random`` (embedding initialised at random), ``static`` (set
from the word vectors and frozen) and ``non_static`` (set from them and
fine-tuned; words the vectors lack keep random rows), beside ``tfidf_logreg`` and
pooled-vector probes on the same labels. ``downstream.rule``: ``"fixed"`` (``num_steps``
at every budget) or ``"few_label"`` (``jaxdl.recipes.few_label``). docs/TRANSFER_RESULTS.md.

``--config.pretrain.kind=language_model`` pretrains an LSTM language model instead
(``jaxdl.recipes.lm_pretraining``: modes lm_probe, lm_fine_tune, lm_ulmfit beside random
and tfidf_logreg; 1, 2, 5, 10, 20 and all labels per class); ``word2vec,language_model``
tables both kinds. Empty ``downstream.modes`` / ``labels_per_class``: the kinds' own.

``--config.pretrain.kind=encoder --config.pretrain.encoder_from=DIR`` transfers from a
BERT-family checkpoint directory instead (``jaxdl.recipes.encoder_transfer``: modes
encoder_probe, encoder_fine_tune beside random, tfidf_logreg and, with
``transfer.embeddings_from``, word-vector probes; data files in fastText or
``<label> <sentence>`` lines, ``data.format``; no ``data.test``: cut by ``test_fraction``).

Run: ``python -m jaxdl.run --config=experiments/transfer_text.py --workdir=DIR``.
"""

from __future__ import annotations

import os

from flax import nnx
from ml_collections import ConfigDict

from jaxdl.config import default_config
from jaxdl.models.sequence import RNNClassifier
from jaxdl.recipes import encoder_transfer, few_label, lm_pretraining as lm, sentence_baselines
from jaxdl.recipes import transfer_experiment as sweep
from jaxdl.recipes.pretrain_kinds import kind_grid, kinds_title, pretrain_kinds
from jaxdl.recipes.text import (classification_data, corpus_without, load_labelled_splits,
                                set_embedding)
from jaxdl.recipes.word2vec_pretraining import VECTORS, word2vec_pretraining
from jaxdl.train.checkpoint import has_checkpoint
from jaxdl.train.task import sequence_classification_task
from jaxdl.word2vec.settings import word2vec_config
from jaxdl.config_schema import reads_transfer, Spec, int_list, not_read

MODES = ("random", "static", "non_static", *sentence_baselines.MODES)
LM_KIND_MODES = ("random", "tfidf_logreg", *lm.LM_MODES)  # TF-IDF needs no word vectors
BUDGETS = (5, 10, 20, 50, sweep.ALL_LABELS)
# Sweep-level sections: out of every sub-run's config, so word2vec's sub-runs keep theirs.
SWEEP_SECTIONS = ("downstream", "report", "pretrain")


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = {**reads_transfer("embeddings_from"),  # the encoder kind's GloVe probes
                 "transfer.frozen": not_read("each downstream mode sets it"),
                 "transfer.init_from": not_read("each downstream mode sets it"),
                 "downstream.modes": Spec(tuple, element=Spec(str, choices=tuple(dict.fromkeys(
                     (*MODES, *LM_KIND_MODES, *encoder_transfer.ENCODER_MODES,
                      *encoder_transfer.VECTOR_MODES)))), distinct=True),  # (): the kinds' own
                 "downstream.labels_per_class": int_list(0, min_len=0),
                 "downstream.rule": Spec(str, choices=few_label.RULES)}


def get_config() -> ConfigDict:
    """The default configuration (labels_per_class 0 means all labels)."""
    config = default_config()
    config.experiment = "transfer_text"
    config.data = dict(train="", test="", corpus="", lower=True, min_count=2, max_len=32,
                       max_per_class=400, test_fraction=0.2, split_seed=0, encoding="utf-8",
                       format="auto")
    config.model = dict(embed_dim=64, hidden_dim=64, dropout=0.3)
    # Every word2vec setting but dim: the vectors take the classifier's model.embed_dim.
    # streams=1, batch_centres=1024: docs/TRANSFER_RESULTS.md was measured with them (the
    # library defaults before streams=16 and 4096, which score higher on word similarity;
    # not yet re-run here).
    config.word2vec = word2vec_config(epochs=5, window=5, negative=5, min_count=2, sample=1e-3, streams=1,
                                      batch_centres=1024)
    del config.word2vec["dim"]
    config.optimizer.update(name="adam", lr=2e-3, grad_clip_norm=1.0)
    config.train.update(batch_size=32, eval_batch_size=256, steps_per_loop=25, log_every=100)
    config.pretrain = dict(kind="word2vec", lm_epochs=5, lm_seq_len=32, lm_lr=3e-3,
                           lm_checkpoint_every=100, **encoder_transfer.DEFAULTS)
    config.downstream = dict(modes=(), labels_per_class=(), seeds=(0, 1, 2), num_steps=300,
                             eval_every=50, rule="fixed",
                             few_label=few_label.FewLabelRule().as_dict())
    return config


def run(config: ConfigDict, workdir: str | None) -> dict:
    """Pretrain word2vec and/or the LM, run every mode × budget × seed, aggregate."""
    kinds, workdir = pretrain_kinds(config), sweep.require_workdir(config, workdir)
    if kinds == ("encoder",):
        return encoder_transfer.encoder_transfer(config, workdir)
    config = ConfigDict(config.to_dict())  # the grid resolved below stays out of config.json
    config.downstream.modes, config.downstream.labels_per_class = kind_grid(
        config.downstream, kinds, {"word2vec": (MODES, BUDGETS),
                                   "language_model": (LM_KIND_MODES, lm.LM_BUDGETS)})
    train_split, test_split = load_labelled_splits(config.data)
    data = classification_data(config.data, train_split, test_split)
    task = sequence_classification_task()
    corpus = lambda: corpus_without(config.data, test_split[0])  # no test sentence, even unlabelled
    pretrain_cfg, pretrain_fn = word2vec_pretraining(config, SWEEP_SECTIONS, corpus)
    vectors_path = os.path.join(workdir, "pretrain", VECTORS)

    rule = few_label.downstream_rule(config.downstream)
    lm.check_rule(config.downstream.modes, rule)
    baselines = sentence_baselines.SentenceBaselines(
        train_split[0], data.train.arrays["y"], test_split[0], data.test.arrays["y"],
        vectors_path, corpus=corpus)

    def configure(sub: ConfigDict) -> None:
        few_label.apply_rule(sub, rule, baselines.pool_y)
        if sub.mode in lm.LM_MODES:
            return lm.set_lm_transfer(sub, os.path.join(workdir, lm.LM_DIR))
        sub.transfer.init_from = "" if sub.mode in ("random", "tfidf_logreg") else vectors_path
        sub.transfer.frozen = ("^embed/",) if sub.mode == "static" else ()

    def downstream_fn(sub: ConfigDict, sub_dir: str) -> dict:
        if sub.mode in sentence_baselines.MODES:
            return baselines.run(sub, sub_dir)
        m = sub.model
        model = RNNClassifier(len(data.vocab), len(data.classes), m.embed_dim, m.hidden_dim,
                              cell="lstm", pooling="mean", dropout=m.dropout,
                              rngs=nnx.Rngs(sub.seed))
        if sub.mode in lm.LM_MODES:
            return lm.fit_lm_downstream(model, task, data.train, data.test, sub, sub_dir)
        coverage = None
        if sub.transfer.init_from and not has_checkpoint(sub_dir):
            coverage = set_embedding(model, data.vocab, sub.transfer.init_from)
        return sweep.fit_downstream(model, task, data.train, data.test, sub, sub_dir,
                                    embedding_coverage=coverage)

    subruns = {"word2vec": ("pretrain", pretrain_cfg, pretrain_fn), "language_model": (
        lm.LM_DIR, lm.language_model_config(config, SWEEP_SECTIONS), lambda sub, sub_dir:
        lm.pretrain_language_model(corpus(), data.vocab, sub,
                                   sub_dir))}
    pretrains = {subruns[k][0]: subruns[k][1:] for k in kinds}
    pretrain, results = sweep.run_transfer_sweep(
        config, workdir, pretrains=pretrains, configure=configure, downstream_fn=downstream_fn,
        drop=SWEEP_SECTIONS)
    names = kinds_title(kinds)
    table, markdown, headline = sweep.table_report(
        workdir, results, baseline="random", pool_per_class=len(data.train) / len(data.classes),
        heading=f"Test accuracy {few_label.schedule_phrase(config.downstream)} ({names})",
        plot_title=f"LSTM classifier: {names}")
    about = {("pretrain_lm" if d == lm.LM_DIR else d): {"workdir": d, "steps": s["steps"]}
             for d, s in pretrain.items()}
    if "pretrain" in about:  # word2vec's keys as before the LM kind
        about["pretrain"]["vectors"] = f"pretrain/{VECTORS}"
    return sweep.sweep_summary(
        config, results, table, markdown, headline=headline, classes=data.classes, **about,
        metrics={k: pretrain[subruns[k][0]]["corpus"] for k in kinds}, vocab_size=len(data.vocab))
