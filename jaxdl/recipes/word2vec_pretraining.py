"""word2vec pretraining for a sentence classifier: the sub-run that writes its vectors.

T1: skip-gram word2vec (``config.word2vec``, vectors of the classifier's
``model.embed_dim``) trained through ``fit`` (``jaxdl.word2vec.training``),
checkpointed every ``CHECKPOINT_EVERY`` steps so a killed pretraining resumes, on
a corpus the experiment supplies (``transfer_text``: its corpus without the
classifier's test sentences). The vectors go to ``<sub-run dir>/vectors.txt`` in
word2vec's text format, where the downstream modes read them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Sequence

from ml_collections import ConfigDict

from jaxdl.evaluation.word2vec_format import save_word2vec_format
from jaxdl.recipes import transfer_experiment as sweep
from jaxdl.word2vec.corpus import Word2VecCorpus
from jaxdl.word2vec.settings import Word2VecSettings
from jaxdl.word2vec.training import fit_word2vec_model, word2vec_fit_config
from jaxdl.workdir import fit_summary

CHECKPOINT_EVERY = 160  # steps (ten dispatches of 16), so a killed pretraining resumes
VECTORS = "vectors.txt"


def word2vec_settings(config: ConfigDict) -> Word2VecSettings:
    """``config.word2vec`` as word2vec's hyper-parameters, vectors of ``model.embed_dim``."""
    return dataclasses.replace(Word2VecSettings.from_config(config), dim=config.model.embed_dim)


def word2vec_pretraining(config: ConfigDict, drop: Sequence[str],
                         corpus: Callable[[], list[list[str]]]
                         ) -> tuple[ConfigDict, sweep.TrainFn]:
    """The pretraining sub-run's config and ``(config, dir) -> summary`` function.

    Args:
      config: the experiment's config (``word2vec``, ``model.embed_dim``, ``train``).
      drop: the experiment's sweep-level sections, left out of the sub-run's config.
      corpus: returns the token lists to train on (called only when the sub-run runs).
    Returns:
      ``(sub-run config, train function)``; the function writes ``VECTORS`` in its
      directory and returns the summary with the corpus's size under ``"corpus"``.
    """
    settings = word2vec_settings(config)
    pretrain_cfg = word2vec_fit_config(settings, sweep.subrun_config(config, drop=drop,
                                                                     eval_every=0))
    pretrain_cfg.checkpoint.every_steps = CHECKPOINT_EVERY

    def pretrain_fn(sub: ConfigDict, sub_dir: str) -> dict:
        sentences = corpus()
        vocabulary = Word2VecCorpus.from_sentences(sentences, min_count=settings.min_count)
        result, vectors = fit_word2vec_model(vocabulary, settings, config=sub, workdir=sub_dir)
        save_word2vec_format(os.path.join(sub_dir, VECTORS), vectors.words, vectors.vectors)
        return fit_summary(f"{config.experiment}/word2vec", result, sub, vectors=VECTORS,
                           corpus={"sentences": len(sentences), "tokens": vocabulary.raw_words,
                                   "vocab_size": len(vocabulary.words)})

    return pretrain_cfg, pretrain_fn


__all__ = ["CHECKPOINT_EVERY", "VECTORS", "word2vec_settings", "word2vec_pretraining"]
