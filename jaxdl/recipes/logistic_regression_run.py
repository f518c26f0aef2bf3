"""A downstream sub-run that fits a logistic regression on fixed features instead of ``fit``.

The TF-IDF baseline and the pooled-feature probes of a transfer sweep are such
runs. Each sits in the sweep's table beside the ``fit`` runs, so it writes what
``transfer_experiment.fit_downstream`` writes: a summary with the same keys
(``metrics["test"]["accuracy"]`` is what the table reads) and a ``metrics.jsonl``
with its evaluations (at step 0: nothing is trained step by step).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Callable, Sequence

import numpy as np
from ml_collections import ConfigDict

from jaxdl.recipes import few_label

# (training rows, val rows, test rows) -> their features, fitted on the training rows only
Featurize = Callable[[Sequence, Sequence, Sequence], tuple[Any, Any, Any]]


def _evaluate(model, x, y) -> dict[str, float]:
    from sklearn.metrics import log_loss
    y = np.asarray(y)
    accuracy = float(np.mean(model.predict(x) == y))
    loss = float(log_loss(y, model.predict_proba(x), labels=model.classes_))
    return {"accuracy": accuracy, "loss": loss}


def _params_sha256(model) -> str:
    h = hashlib.sha256(np.ascontiguousarray(model.coef_, np.float64).tobytes())
    h.update(np.ascontiguousarray(model.intercept_, np.float64).tobytes())
    return h.hexdigest()


def logistic_regression_run(featurize: Featurize, inputs: Sequence, labels: np.ndarray,
                            test_inputs: Sequence, test_labels: np.ndarray, config: ConfigDict,
                            workdir: str | None, **extra: Any) -> dict:
    """Fit one budget and seed's logistic regression and evaluate it on the test split.

    The labelled examples are ``few_label.labelled_split(labels, config.labels_per_class,
    config.seed, rule)``, the very indices ``fit_downstream`` trains an LSTM on; ``C``
    is chosen by ``few_label.select_logistic_regression`` (on ``val``; fixed without
    the rule).

    Args:
      featurize: ``(train rows, val rows, test rows) -> (X_train, X_val, X_test)``,
        dense ``[n, D]`` or sparse; anything it fits (a vocabulary, a scaler) sees
        the training rows only.
      inputs: the pool's N rows (e.g. token lists); labels: int ``[N]``.
      test_inputs, test_labels: the test split.
      config: the sub-run's config (``labels_per_class``, ``seed``, ``mode``, optional
        ``few_label``).
      workdir: where ``metrics.jsonl`` goes (None: nowhere).
      **extra: further summary keys.
    Returns:
      The summary: ``fit_summary``'s keys (``steps`` 0) plus ``mode``,
      ``labels_per_class``, ``train_examples``, ``labelled``, ``selected`` and ``extra``.
    """
    start = time.time()
    rule = few_label.rule_of(config)
    labels = np.asarray(labels)
    train, val = few_label.labelled_split(labels, config.labels_per_class, config.seed, rule)
    rows = [[inputs[i] for i in part] for part in (train, val)]
    x_train, x_val, x_test = featurize(rows[0], rows[1], list(test_inputs))
    model, selected = few_label.select_logistic_regression(
        (x_train, labels[train]), (x_val, labels[val]), rule)
    metrics = {"test": _evaluate(model, x_test, test_labels)}
    if selected["val"] is not None:
        metrics = {"val": selected["val"], **metrics}
    if workdir:
        with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
            for split, values in metrics.items():
                f.write(json.dumps({"step": 0, "split": split, **values}) + "\n")
    return {"experiment": f"{config.experiment}/{config.mode}", "metrics": metrics,
            "baselines": {}, "params_sha256": _params_sha256(model),
            "num_params": int(model.coef_.size + model.intercept_.size), "steps": 0,
            "seed": config.seed, "wall_seconds": round(time.time() - start, 3),
            "stopped_early": False, "mode": config.mode,
            "labels_per_class": config.labels_per_class, "train_examples": int(len(train)),
            "labelled": few_label.indices_digest(train, val), "selected": selected, **extra}


__all__ = ["Featurize", "logistic_regression_run"]
