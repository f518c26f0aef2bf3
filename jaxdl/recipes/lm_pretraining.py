"""Language-model pretraining for a sentence classifier: the LM, its transfer, its modes.

T1: an LSTM language model (``RNNLanguageModel``, the classifier's ``embed_dim``
and ``hidden_dim``, one layer) trained through ``fit`` on a corpus, over the
*classifier's* vocabulary: corpus words outside it read as ``<unk>``, so every
embedding row the LM trains belongs to a classifier word, and rows of classifier
words the corpus never holds keep their random initialisation. Its length is a
rule fixed in advance: ``config.pretrain.lm_epochs`` passes over the corpus, cut
into chunks of ``lm_seq_len`` tokens (each from a zero state).

T2: the LM's ``embed/`` and ``rnn/`` loaded into an ``RNNClassifier`` of the same
sizes, a new ``head/``, in one of three modes:

- ``lm_probe``: the encoder frozen, only the head trained;
- ``lm_fine_tune``: everything trained at the same learning rate;
- ``lm_ulmfit``: gradual unfreezing (Howard & Ruder 2018) in three stages of a
  third of the steps each, head, then head + LSTM, then everything, with
  discriminative learning rates: the LSTM at ``1/2.6`` and the embedding at
  ``1/2.6**2`` of the head's. Each stage reads the same labelled examples in the
  same order (the budget's data source is fixed by the seed).
"""

from __future__ import annotations

import json
import os

import numpy as np
from flax import nnx
from ml_collections import ConfigDict

from jaxdl.data.sequence_sets import language_model_dataset, token_stream
from jaxdl.data.sources import LabelBudgetSource, draw_k_per_class
from jaxdl.data.text import SPECIALS, Vocab
from jaxdl.errors import ConfigError
from jaxdl.models.sequence import RNNLanguageModel
from jaxdl.recipes import transfer_experiment as sweep
from jaxdl.train.checkpoint import has_checkpoint
from jaxdl.train.loop import fit
from jaxdl.train.task import language_model_task
from jaxdl.transfer import fit_gradually_unfrozen, load_pretrained, maybe_init_from, mode_settings
from jaxdl.workdir import fit_summary

LM_MODES = ("lm_probe", "lm_fine_tune", "lm_ulmfit")
LM_BUDGETS = (1, 2, 5, 10, 20, sweep.ALL_LABELS)
LM_DIR = "pretrain_lm"  # beside word2vec's workdir/pretrain, which old workdirs keep
ULMFIT_DECAY = 2.6  # learning-rate factor from one layer to the one below it
# The ULMFiT stages' frozen parameters: head only, then head + LSTM, then all.
ULMFIT_FROZEN = (("^(?!head/)",), ("^embed/",), ())


def language_model_config(config: ConfigDict, drop) -> ConfigDict:
    """The LM pretraining sub-run's config: ``pretrain.lm_epochs`` epochs, no evaluation,
    ``optimizer.lr = pretrain.lm_lr`` on a cosine schedule, checkpoints every
    ``pretrain.lm_checkpoint_every`` steps (so a killed pretraining resumes).

    Args:
      config: the experiment's config (``pretrain``, ``model``, ``optimizer``, ``train``).
      drop: the sweep's own sections (``transfer_experiment.subrun_config``); word2vec's
        settings are left out too.
    """
    sub = sweep.subrun_config(config, drop=tuple(drop) + ("word2vec",), num_steps=0,
                              eval_every=0, num_epochs=int(config.pretrain.lm_epochs))
    # Its own settings only: the same LM whichever other kinds share the run.
    sub.pretrain = {k: v for k, v in config.pretrain.to_dict().items() if k.startswith("lm_")}
    sub.optimizer.update(lr=float(config.pretrain.lm_lr), schedule="cosine")
    sub.checkpoint.every_steps = int(config.pretrain.lm_checkpoint_every)
    return sub


def pretrain_language_model(sentences: list[list[str]], vocab: Vocab, config: ConfigDict,
                            workdir: str) -> dict:
    """Train the LM on ``sentences`` (token lists) over ``vocab`` in ``workdir``.

    Returns:
      Its ``fit_summary`` plus ``corpus``: sentences, tokens, the share of tokens
      outside ``vocab`` and how many ``vocab`` words the corpus holds.
    """
    stream = token_stream(sentences, vocab)
    data = language_model_dataset(stream, seq_len=int(config.pretrain.lm_seq_len), name="corpus")
    m = config.model
    model = RNNLanguageModel(len(vocab), m.embed_dim, m.hidden_dim, 1, "lstm", m.dropout,
                             rngs=nnx.Rngs(config.seed))
    result = fit(model, language_model_task(), data, config=config, workdir=workdir)
    words = int(np.sum(np.unique(stream) >= len(SPECIALS)))
    losses = [e["loss"] for e in result.history if e.get("split") == "train" and "loss" in e]
    return fit_summary(f"{config.experiment}/language_model", result, config,
                       final_train_loss=losses[-1] if losses else None,
                       corpus={"sentences": len(sentences), "tokens": int(stream.size),
                               "unk_share": float(np.mean(stream == vocab.unk_id)),
                               "vocab_words_seen": words, "vocab_size": len(vocab)})


def set_lm_transfer(config: ConfigDict, lm_workdir: str) -> None:
    """``config.transfer`` of LM mode ``config.mode``: load ``lm_workdir`` but ``head/``;
    the probe freezes the rest; ULMFiT adds its learning-rate factors (its stages set
    ``frozen`` themselves)."""
    settings = mode_settings("linear_probe" if config.mode == "lm_probe" else "fine_tune")
    config.transfer.init_from = lm_workdir
    config.transfer.dont_load, config.transfer.frozen = settings["dont_load"], settings["frozen"]
    if config.mode == "lm_ulmfit":
        config.transfer.lr_multipliers = (("^rnn/", 1 / ULMFIT_DECAY),
                                          ("^embed/", 1 / ULMFIT_DECAY ** 2))


def check_rule(modes, rule) -> None:
    """Refuse a few-label rule (``jaxdl.recipes.few_label``) for ``lm_ulmfit``, whose
    stages hold out no labelled examples to stop early on.

    Raises:
      ConfigError: ``rule`` is set and ``modes`` has ``lm_ulmfit``.
    """
    if rule is not None and "lm_ulmfit" in modes:
        raise ConfigError("config.downstream.rule='few_label' does not apply to mode "
                          "'lm_ulmfit' (its stages hold out no labels to stop on); expected "
                          "rule='fixed', or config.downstream.modes without 'lm_ulmfit'")


def ulmfit_stage_steps(num_steps: int) -> list[int]:
    """``num_steps`` split into the three stages (the remainder goes to the last)."""
    third = num_steps // 3
    return [third, third, num_steps - 2 * third]


def _merge_stage_logs(workdir: str, stages: int) -> None:
    """``workdir/metrics.jsonl``: every stage's events, steps counted from the first stage's
    start, so the sweep reads one learning curve."""
    lines, offset = [], 0
    for index in range(stages):
        last = 0
        with open(os.path.join(workdir, f"stage{index}", "metrics.jsonl")) as f:
            for line in f:
                if line.strip():
                    event = json.loads(line)
                    last = max(last, int(event.get("step", 0)))
                    event.update(step=int(event.get("step", 0)) + offset, stage=index)
                    lines.append(json.dumps(event))
        offset += last
    path = os.path.join(workdir, "metrics.jsonl")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def fit_lm_downstream(model: nnx.Module, task, pool, test, config: ConfigDict,
                      workdir: str) -> dict:
    """One LM-mode downstream run (see the module docstring); ``config`` set by
    ``set_lm_transfer``. Returns its summary, with the same keys as
    ``transfer_experiment.fit_downstream``'s (plus ``stages`` for ULMFiT)."""
    if config.mode != "lm_ulmfit":
        report = maybe_init_from(model, config, workdir)
        return sweep.fit_downstream(model, task, pool, test, config, workdir,
                                    loaded=None if report is None else len(report.loaded))
    if not has_checkpoint(os.path.join(workdir, "stage0")):
        load_pretrained(model, config.transfer.init_from, tuple(config.transfer.dont_load))
    indices = draw_k_per_class(pool.arrays["y"], config.labels_per_class, config.seed)
    source = LabelBudgetSource(pool, indices, config.train.batch_size, seed=config.seed)
    stages = list(zip(ULMFIT_FROZEN, ulmfit_stage_steps(int(config.train.num_steps))))
    results = fit_gradually_unfrozen(model, task, source, config=config, stages=stages,
                                     eval_data={"test": test}, workdir=workdir)
    _merge_stage_logs(workdir, len(stages))
    summary = fit_summary(f"{config.experiment}/{config.mode}", results[-1], config,
                          mode=config.mode, labels_per_class=config.labels_per_class,
                          train_examples=len(indices),
                          stages=[{"frozen": list(f), "steps": n} for f, n in stages])
    summary["steps"] = sum(r.steps for r in results)
    return summary


__all__ = ["LM_MODES", "LM_BUDGETS", "LM_DIR", "ULMFIT_DECAY", "language_model_config",
           "pretrain_language_model", "set_lm_transfer", "check_rule", "ulmfit_stage_steps",
           "fit_lm_downstream"]
