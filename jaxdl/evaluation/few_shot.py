"""k-shot linear-probe evaluation of any backbone.

A backbone is judged by how well a linear classifier on its frozen features
does with only ``k`` labelled examples per class: for each ``k`` and seed a
label subset is drawn, a logistic regression is fitted on its features
(``jaxdl.evaluation.probe.linear_probe_accuracy``) and scored on a test set.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jax
import numpy as np
from flax import nnx

from jaxdl.data.sources import draw_k_per_class
from jaxdl.errors import DataError
from jaxdl.evaluation.paired_stats import mean_std
from jaxdl.evaluation.probe import linear_probe_accuracy

FeaturesFn = Callable[[np.ndarray], np.ndarray]


def model_features_fn(model: nnx.Module, *, batch_size: int = 512) -> FeaturesFn:
    """``x [N, ...] -> features [N, D]`` from ``model.features`` in eval mode.

    Args:
      model: any jaxdl model with a ``features(x)`` method (dropout and
        BatchNorm switched to inference).
      batch_size: examples per jitted call (the last batch is padded).
    """
    graphdef, state = nnx.split(nnx.view(model, deterministic=True, use_running_average=True,
                                         raise_if_not_found=False))
    apply = jax.jit(lambda state, x: nnx.merge(graphdef, state).features(x))

    def features(x: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(x), batch_size):
            chunk = np.asarray(x[start:start + batch_size])
            pad = batch_size - len(chunk) if len(x) > batch_size else 0
            padded = np.concatenate([chunk, np.repeat(chunk[:1], pad, 0)]) if pad else chunk
            out.append(np.asarray(apply(state, padded))[:len(chunk)])
        return np.concatenate(out)

    return features


def few_shot_probe(features_fn: FeaturesFn, data: Mapping[str, Mapping[str, np.ndarray]], *,
                   ks: Sequence[int] = (1, 5, 10), seeds: Sequence[int] = (0, 1, 2)) -> dict:
    """k-shot linear-probe accuracy of a frozen backbone.

    Args:
      features_fn: ``x [N, ...] -> [N, D]``; e.g. ``model_features_fn(model)``
        after ``jaxdl.transfer.load_pretrained(model, run_workdir, ("^head/",))``.
      data: ``{"train": {"x", "y"}, "test": {"x", "y"}}``; the k-shot sets are
        drawn from ``train``.
      ks: labelled examples per class.
      seeds: one label subset per seed.
    Returns:
      ``{k: {"accuracy_mean", "accuracy_std", "per_seed": {seed: acc}}}``.
    """
    for split in ("train", "test"):
        if split not in data or not {"x", "y"} <= set(data[split]):
            raise DataError(f"few_shot_probe data is missing {split!r} with 'x' and 'y'; "
                            "expected {'train': {'x', 'y'}, 'test': {'x', 'y'}}")
    train_features = np.asarray(features_fn(data["train"]["x"]), np.float64)
    test_features = np.asarray(features_fn(data["test"]["x"]), np.float64)
    results = {}
    for k in ks:
        per_seed = {}
        for seed in seeds:
            idx = draw_k_per_class(data["train"]["y"], k, seed)
            per_seed[int(seed)] = linear_probe_accuracy(
                train_features[idx], data["train"]["y"][idx], test_features, data["test"]["y"])
        mean, std = mean_std(list(per_seed.values()))
        results[int(k)] = {"accuracy_mean": mean, "accuracy_std": std, "per_seed": per_seed}
    return results


def few_shot_probe_run(model: nnx.Module, run_workdir: str,
                       data: Mapping[str, Mapping[str, np.ndarray]], *,
                       ks: Sequence[int] = (1, 5, 10), seeds: Sequence[int] = (0, 1, 2),
                       head: str = "head") -> dict:
    """``few_shot_probe`` of a trained run: its newest checkpoint loaded into ``model``.

    Args:
      model: a freshly built model of the run's architecture (its ``head`` may
        have another number of classes; it is not loaded and not used).
      run_workdir: the run's workdir (or checkpoint directory).
      data, ks, seeds: as ``few_shot_probe``.
      head: the classifier attribute left out of loading.
    """
    from jaxdl.transfer import load_pretrained  # transfer imports nothing from evaluation

    load_pretrained(model, run_workdir, dont_load=(f"^{head}/",))
    return few_shot_probe(model_features_fn(model), data, ks=ks, seeds=seeds)
