"""The modes of a text transfer sweep that are not trained by ``fit``.

``tfidf_logreg`` (``jaxdl.recipes.tfidf_baseline``) and the linear probes on
pooled word vectors (``w2v_mean_probe``, ``w2v_sif_probe``:
``jaxdl.recipes.pooled_probe``), each on the labelled examples an LSTM sub-run
of the same budget and seed trains on.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Callable, Sequence

import numpy as np
from ml_collections import ConfigDict

from jaxdl.recipes import pooled_probe
from jaxdl.recipes.tfidf_baseline import tfidf_logreg_run

MODES = ("tfidf_logreg", *pooled_probe.POOLINGS)


@dataclasses.dataclass(frozen=True)
class SentenceBaselines:
    """What these modes read: the pool and test split as token lists with int labels.

    Attributes:
      pool_text, pool_y: the labelled pool (``[N]`` labels) in the LSTM dataset's order.
      test_text, test_y: the test split.
      vectors_path: the pretrained word2vec file the probes pool.
      corpus: returns the vectors' training corpus (token lists): SIF's ``p(w)``.
    """

    pool_text: Sequence[Sequence[str]]
    pool_y: np.ndarray
    test_text: Sequence[Sequence[str]]
    test_y: np.ndarray
    vectors_path: str
    corpus: Callable[[], Sequence[Sequence[str]]]

    def run(self, config: ConfigDict, workdir: str) -> dict:
        """The sub-run of ``config.mode`` (one of ``MODES``); returns its summary."""
        data = (self.pool_text, self.pool_y, self.test_text, self.test_y)
        if config.mode == "tfidf_logreg":
            return tfidf_logreg_run(*data, config, workdir)
        counts = collections.Counter(w for s in self.corpus() for w in s)
        return pooled_probe.word_vector_probe_run(self.vectors_path, counts, *data, config,
                                                  workdir)


__all__ = ["MODES", "SentenceBaselines"]
