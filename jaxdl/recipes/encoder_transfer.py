"""Transfer from a Transformer encoder pretrained elsewhere (``config.pretrain.kind="encoder"``).

T1 is a BERT-family checkpoint directory (``config.pretrain.encoder_from``, e.g.
all-MiniLM-L6-v2); nothing is pretrained here. T2 is a sentence classifier on
labelled files (``config.data.train`` / ``test``, fastText or ``<label> <sentence>``
lines, ``jaxdl.data.formats.labelled_sentences``), at 1, 2, 5, 10, 20, 50 and all
labels per class × seeds, in these modes, every one on the same labelled indices
of a budget and seed:

- ``encoder_probe``: logistic regression on the frozen encoder's mean-pooled,
  L2-normalised sentence vectors (computed once per split and cached,
  ``jaxdl.recipes.encoder_inputs``), ``C`` as the other probes choose it;
- ``encoder_fine_tune``: the whole encoder and a new linear head
  (``EncoderClassifier``) through ``fit``: AdamW, linear warm-up over
  ``pretrain.warmup_share`` of the steps then cosine decay, peak rate
  ``pretrain.fine_tune_lr`` for the top block, discriminative rates below it
  (``transfer.lr_multipliers``: ``layer_decay`` per block down, the embeddings
  one step below the first block) and ``head_lr_multiplier`` for the head;
- ``random``: the same architecture randomly initialised (BERT's initialisation),
  trained the same way at ``pretrain.random_lr`` with no layer decay: the scratch
  baseline;
- ``tfidf_logreg``: TF-IDF + logistic regression (``jaxdl.recipes.tfidf_baseline``);
- ``vectors_mean_probe``, ``vectors_sif_probe``: mean and SIF pooling of the word
  vectors of ``config.transfer.embeddings_from`` (GloVe text, ``.npy`` + vocabulary,
  ...); SIF's ``p(w)`` from Zipf's law on the file's frequency order.

The table has paired 95% intervals against ``random`` and ``tfidf_logreg``.
Steps and model selection follow ``config.downstream`` (``rule``, ``num_steps``).
"""

from __future__ import annotations

import math
import os

import numpy as np
from flax import nnx
from ml_collections import ConfigDict

from jaxdl import losses, metrics as metrics_lib
from jaxdl.data.text import tokenize
from jaxdl.errors import ConfigError, DataError
from jaxdl.evaluation.plots import plots_dir
from jaxdl.models.encoder_classifier import EncoderClassifier
from jaxdl.recipes import few_label, pooled_probe
from jaxdl.recipes import transfer_experiment as sweep
from jaxdl.sweep.plots import plot_by_mode
from jaxdl.sweep.table import write_table_files
from jaxdl.recipes.baseline_table import aggregate_against, markdown_against
from jaxdl.recipes.encoder_inputs import (cached_embeddings, check_encoder_dir, token_dataset,
                                          token_width)
from jaxdl.data.formats.labelled_sentences import load_sentence_splits
from jaxdl.recipes.pretrain_kinds import kind_grid
from jaxdl.recipes.tfidf_baseline import tfidf_logreg_run
from jaxdl.train.task import Task

ENCODER_MODES = ("encoder_probe", "encoder_fine_tune")
VECTOR_MODES = {"vectors_mean_probe": "w2v_mean_probe", "vectors_sif_probe": "w2v_sif_probe"}
FIT_MODES = ("random", "encoder_fine_tune")
BUDGETS = (1, 2, 5, 10, 20, 50, sweep.ALL_LABELS)
BASELINES = ("random", "tfidf_logreg")
# The sweep's own sections and the LSTM / word2vec ones, out of the sub-run configs.
SECTIONS = ("downstream", "report", "pretrain", "model", "word2vec")
# config.pretrain keys of this kind and their defaults (experiments/transfer_text.py adds them).
DEFAULTS = dict(encoder_from="", max_length=64, encode_batch_size=64, fine_tune_lr=1e-4,
                random_lr=5e-4, layer_decay=0.9, head_lr_multiplier=10.0, warmup_share=0.1,
                weight_decay=0.01)


def encoder_modes(config: ConfigDict) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """``(modes, budgets)``: ``config.downstream``'s, or this kind's (the word-vector
    probes only when ``config.transfer.embeddings_from`` is set).

    Raises:
      ConfigError: a mode this kind lacks, or a word-vector probe without a file.
    """
    vectors = bool(config.transfer.get("embeddings_from", ""))
    # Given modes may name the word-vector probes (refused below without a file);
    # the default grid has them only when there is one.
    offered = ("random", "tfidf_logreg", *VECTOR_MODES, *ENCODER_MODES)
    if not config.downstream.modes and not vectors:
        offered = tuple(m for m in offered if m not in VECTOR_MODES)
    modes, budgets = kind_grid(config.downstream, ("encoder",), {"encoder": (offered, BUDGETS)})
    if not vectors and any(m in VECTOR_MODES for m in modes):
        raise ConfigError(f"config.downstream.modes has {[m for m in modes if m in VECTOR_MODES]}"
                          " but config.transfer.embeddings_from is empty; expected a word-vector"
                          " file (GloVe text, .npy beside its vocabulary, word2vec, fastText)")
    return modes, budgets


def lr_multipliers(num_layers: int, decay: float, head: float) -> tuple:
    """``(regex, factor)`` pairs: head ``head``; block ``i`` ``decay ** (L - 1 - i)``;
    embeddings ``decay ** L`` (the first match wins in ``jaxdl.optim``)."""
    pairs = [("^head/", float(head))]
    pairs += [(f"^encoder/layers/{i}/", float(decay) ** (num_layers - 1 - i))
              for i in range(num_layers)]
    return tuple(pairs + [("^encoder/embeddings/", float(decay) ** num_layers)])


def classification_task() -> Task:
    """Softmax cross-entropy and accuracy of ``EncoderClassifier`` on token batches."""
    def forward(model, batch, rngs):
        return model({"input_ids": batch["input_ids"],
                      "attention_mask": batch["attention_mask"]}, rngs=rngs)
    return Task(loss=losses.softmax_cross_entropy, metrics={"accuracy": metrics_lib.accuracy},
                forward=forward)


def zipf_counts(words) -> dict[str, float]:
    """``{word: 1 / (rank + 1)}``: unigram weights of a file listing words most frequent
    first (GloVe, word2vec), for SIF's ``p(w)`` when the corpus counts are not at hand."""
    return {w: 1.0 / (rank + 1) for rank, w in enumerate(words)}


def encoder_transfer(config: ConfigDict, workdir: str) -> dict:
    """Run every mode × budget × seed of the encoder kind; returns the summary.

    Raises:
      ConfigError: a bad ``pretrain.encoder_from``, data file, mode or budget; all
        checked before anything is written.
    """
    pre = config.pretrain
    encoder_dir = check_encoder_dir(pre.encoder_from)
    modes, budgets = encoder_modes(config)
    rule = few_label.downstream_rule(config.downstream)
    (train_text, train_labels), (test_text, test_labels), about = \
        load_sentence_splits(config.data)
    classes = sorted(set(train_labels))
    unseen = sorted(set(test_labels) - set(classes))
    if unseen:
        raise DataError(f"the test split has labels {unseen[:5]} that no training example "
                        f"has (training labels: {classes[:10]})")
    pool_y = np.array([classes.index(c) for c in train_labels], np.int32)
    test_y = np.array([classes.index(c) for c in test_labels], np.int32)
    tokens = [[tokenize(s, lower=config.data.lower) for s in text]
              for text in (train_text, test_text)]
    config = ConfigDict(config.to_dict())  # the resolved grid stays out of config.json
    config.downstream.modes, config.downstream.labels_per_class = modes, budgets
    cache: dict = {}

    def embeddings(split: str) -> np.ndarray:
        if split not in cache:
            cache[split] = cached_embeddings(
                workdir, split, train_text if split == "pool" else test_text, encoder_dir,
                max_length=pre.max_length, batch_size=pre.encode_batch_size)
        return cache[split]

    def token_sets():
        if "tokens" not in cache:
            from jaxdl.pretrained.bert_tokenizer import BertTokenizer
            tokenizer = BertTokenizer.from_directory(encoder_dir, max_length=int(pre.max_length))
            width = token_width(tokenizer, train_text, test_text)
            cache["tokens"] = (token_dataset(tokenizer, train_text, pool_y, width=width,
                                             name="train"),
                               token_dataset(tokenizer, test_text, test_y, width=width,
                                             name="test"))
        return cache["tokens"]

    def word_vectors():
        if "vectors" not in cache:
            from jaxdl.pretrained.word_vectors_file import read_vectors
            cache["vectors"] = read_vectors(config.transfer.embeddings_from,
                                            encoding=config.data.get("encoding", "utf-8"))[0]
        return cache["vectors"]

    def configure(sub: ConfigDict) -> None:
        few_label.apply_rule(sub, rule, pool_y)
        sub.encoder = {"from": encoder_dir, "max_length": int(pre.max_length),
                       "init": "random" if sub.mode == "random" else "pretrained"}
        if sub.mode not in FIT_MODES:
            return
        fine_tune = sub.mode == "encoder_fine_tune"
        steps = sub.train.num_steps
        sub.optimizer.update(
            name="adamw", lr=float(pre.fine_tune_lr if fine_tune else pre.random_lr),
            weight_decay=float(pre.weight_decay), schedule="warmup_cosine",
            warmup_steps=int(math.ceil(pre.warmup_share * steps)), grad_clip_norm=1.0)
        from jaxdl.pretrained.bert_checkpoint import bert_config
        layers = bert_config(encoder_dir).num_layers
        sub.transfer.lr_multipliers = (lr_multipliers(layers, pre.layer_decay,
                                                      pre.head_lr_multiplier)
                                       if fine_tune else ())

    def downstream_fn(sub: ConfigDict, sub_dir: str) -> dict:
        if sub.mode == "tfidf_logreg":
            return tfidf_logreg_run(tokens[0], pool_y, tokens[1], test_y, sub, sub_dir)
        if sub.mode == "encoder_probe":
            return pooled_probe.pooled_probe_run(
                np.stack, list(embeddings("pool")), pool_y, list(embeddings("test")), test_y,
                sub, sub_dir, encoder=encoder_dir, pooling="mean")
        if sub.mode in VECTOR_MODES:
            vectors = word_vectors()
            features = pooled_probe.word_vector_features(
                VECTOR_MODES[sub.mode], vectors, zipf_counts(vectors.words), tokens[0])
            return pooled_probe.pooled_probe_run(
                features, tokens[0], pool_y, tokens[1], test_y, sub, sub_dir,
                vectors=os.path.basename(config.transfer.embeddings_from),
                pooling=pooled_probe.POOLINGS[VECTOR_MODES[sub.mode]])
        from jaxdl.pretrained.bert_checkpoint import bert_config, load_bert
        from jaxdl.models.transformer_encoder import TransformerEncoder
        if sub.mode == "encoder_fine_tune":
            encoder = load_bert(encoder_dir, seed=sub.seed)
        else:  # the scratch baseline: the same sizes, BERT's initialisation
            encoder = TransformerEncoder(bert_config(encoder_dir), rngs=nnx.Rngs(sub.seed))
        model = EncoderClassifier(encoder, len(classes), rngs=nnx.Rngs(sub.seed + 1))
        pool, test = token_sets()
        return sweep.fit_downstream(model, classification_task(), pool, test, sub, sub_dir,
                                    token_width=int(pool.arrays["input_ids"].shape[1]))

    _, results = sweep.run_transfer_sweep(config, workdir, pretrains={}, configure=configure,
                                          downstream_fn=downstream_fn, drop=SECTIONS)
    present = [b for b in BASELINES if b in modes]
    table = aggregate_against(results, present)
    markdown = markdown_against(table, present)
    heading = (f"Test accuracy {few_label.schedule_phrase(config.downstream)}: "
               f"{os.path.basename(encoder_dir)}, paired against "
               f"{' and '.join(present) or 'no baseline'}")
    headline = f"## {heading}\n\n{markdown}"
    write_table_files(workdir, headline)
    pool_per_class = len(pool_y) / len(classes)
    plot_by_mode(table, "labels_per_class",
                          os.path.join(plots_dir(workdir), "accuracy_vs_labels.png"),
                          x_of=lambda k: pool_per_class if k == "all" else float(k),
                          xlabel="labels per class (log; rightmost: all)", logx=True,
                          title=f"{os.path.basename(encoder_dir)}: transfer vs baselines")
    return sweep.sweep_summary(config, results, table, markdown, headline=headline,
                               classes=classes, data=about, encoder_from=encoder_dir,
                               pool_examples=len(pool_y), test_examples=len(test_y))


__all__ = ["ENCODER_MODES", "VECTOR_MODES", "FIT_MODES", "BUDGETS", "BASELINES", "DEFAULTS",
           "encoder_modes", "lr_multipliers", "classification_task", "zipf_counts",
           "encoder_transfer"]
