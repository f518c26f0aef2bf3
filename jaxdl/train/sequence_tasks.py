"""Tasks that plug the recurrent text models into the one training loop.

The datasets come from `jaxdl.data.sequence_sets`: `tokens`/`token_mask`
`[B, T]`, a target `y`, and for per-position targets a `target_mask [B, T]`.
The trainer adds the example mask `batch["mask"] [B]` (0 for the padding rows
of an evaluation batch); per-token losses weigh each position by
`mask[:, None] * target_mask`, so neither padded rows nor padded positions count.

Example:
  >>> result = fit(LSTMTagger(...), tagging_task(), train_set, config=config)
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdl import losses, metrics as metrics_lib
from jaxdl.data.arrays import ArrayDataset
from jaxdl.errors import ConfigError
from jaxdl.train.task import Batch, Task

_INPUT_KEYS = ("chars", "char_mask")


def model_inputs(batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """The model input dict `{"tokens", "mask"[, "chars", "char_mask"]}` of a dataset batch."""
    inputs = {"tokens": batch["tokens"], "mask": batch["token_mask"]}
    inputs.update({key: batch[key] for key in _INPUT_KEYS if key in batch})
    return inputs


def _forward(model: nnx.Module, batch: Batch, rngs: nnx.Rngs | None) -> jax.Array:
    return model(model_inputs(batch), rngs=rngs)


def per_token_weights(batch: Batch) -> jax.Array:
    """Loss weights `[B, T]`: the example mask `[B]` times the target mask `[B, T]`."""
    return batch["mask"][:, None] * batch["target_mask"]


def word_dropout(rate: float, unk_id: int):
    """A training-only `preprocess` replacing each real token by `<unk>` with probability `rate`.

    The model thus learns a useful `<unk>` embedding for the words it will not
    know at test time, while their characters (if used) stay intact. The key is
    the trainer's per-step key, so the choice is a pure function of (seed, step).
    """
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"word_dropout={rate!r}; expected a probability in [0, 1)")

    def preprocess(batch: Batch, key: jax.Array) -> Batch:
        drop = jax.random.bernoulli(key, rate, batch["tokens"].shape) & (batch["token_mask"] > 0)
        return {**batch, "tokens": jnp.where(drop, unk_id, batch["tokens"])}

    return preprocess


def tagging_task(*, word_dropout_rate: float = 0.0, unk_id: int = 1) -> Task:
    """Per-token softmax cross-entropy with token accuracy (for `LSTMTagger`).

    Args:
      word_dropout_rate: see `word_dropout`; 0 disables it.
      unk_id: the `<unk>` id written by word dropout.
    """
    preprocess = word_dropout(word_dropout_rate, unk_id) if word_dropout_rate > 0 else None
    return Task(loss=losses.softmax_cross_entropy, metrics={"accuracy": metrics_lib.accuracy},
                forward=_forward, mask=per_token_weights, preprocess=preprocess)


def language_model_task() -> Task:
    """Next-token cross-entropy with `perplexity` (exp of the mean per-token loss) and accuracy."""
    loss = losses.softmax_cross_entropy
    return Task(loss=loss, metrics={"perplexity": metrics_lib.perplexity_metric(loss),
                                    "accuracy": metrics_lib.accuracy},
                forward=_forward, mask=per_token_weights)


def sequence_classification_task() -> Task:
    """One label per sequence: softmax cross-entropy and accuracy (for `RNNClassifier`)."""
    return Task(loss=losses.softmax_cross_entropy, metrics={"accuracy": metrics_lib.accuracy},
                forward=_forward)


def predict(model: nnx.Module, dataset: ArrayDataset, *, batch_size: int = 256) -> np.ndarray:
    """The model's outputs on every example of `dataset`, in eval mode (dropout off).

    Args:
      model: a trained text model (e.g. `fit(...).model`).
      dataset: a dataset from `jaxdl.data.sequence_sets`.
      batch_size: examples per jitted call (the last call is padded, then cut).

    Returns:
      numpy outputs `[N, ...]`, e.g. tag logits `[N, T, num_tags]`.
    """
    graphdef, state = nnx.split(nnx.view(model, deterministic=True, raise_if_not_found=False))
    apply = jax.jit(lambda state, inputs: nnx.merge(graphdef, state)(inputs))
    keys = ("tokens", "token_mask", *_INPUT_KEYS)
    arrays = {k: v for k, v in dataset.arrays.items() if k in keys}
    outputs = []
    for start in range(0, len(dataset), batch_size):
        chunk = {k: v[start:start + batch_size] for k, v in arrays.items()}
        real = len(chunk["tokens"])
        chunk = {k: np.pad(v, [(0, batch_size - real)] + [(0, 0)] * (v.ndim - 1)) for k, v in chunk.items()}
        outputs.append(np.asarray(apply(state, model_inputs(chunk)))[:real])
    return np.concatenate(outputs)
