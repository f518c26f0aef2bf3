"""What a model family plugs into the one training loop: every ``Task`` jaxdl defines.

A ``Task`` says how to call the model on a batch, which loss to minimise and
which metrics to stream. Batches are dicts of arrays; ``batch["mask"]`` marks the
real examples (padding is 0).

The text tasks read the datasets of `jaxdl.data.sequence_sets`: `tokens`/`token_mask`
`[B, T]`, a target `y`, and for per-position targets a `target_mask [B, T]`;
per-token losses weigh each position by `mask[:, None] * target_mask`, so neither
padded rows nor padded positions count. (word2vec's task, whose step is its own,
is `jaxdl.word2vec.training.word2vec_task`.)

Example:
  >>> result = fit(LSTMTagger(...), tagging_task(), train_set, config=config)
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdl import losses, metrics as metrics_lib
from jaxdl.errors import ConfigError

Batch = dict[str, jax.Array]


def _call_model(model: nnx.Module, batch: Batch, rngs: nnx.Rngs | None, inputs: str):
    return model(batch[inputs], rngs=rngs)


@dataclasses.dataclass(frozen=True)
class Task:
    """A supervised task.

    Attributes:
      loss: ``loss(pred, target, mask) -> scalar`` (see ``jaxdl.losses``).
      metrics: name -> streaming ``Metric``; ``loss`` is always added.
      inputs: batch key fed to the model (``model(batch[inputs], rngs=...)``).
      target: batch key of the target.
      forward: optional ``forward(model, batch, rngs) -> pred`` replacing the call.
      mask: optional ``mask(batch) -> weights`` (e.g. example mask × token mask).
      preprocess: optional ``preprocess(batch, key) -> batch`` applied to training
        batches only, on the device (augmentation); ``key`` is a pure function of
        (seed, step).
    """

    loss: Callable = losses.softmax_cross_entropy
    metrics: Mapping[str, metrics_lib.Metric] = dataclasses.field(
        default_factory=lambda: {"accuracy": metrics_lib.accuracy})
    inputs: str = "x"
    target: str = "y"
    forward: Callable | None = None
    mask: Callable | None = None
    preprocess: Callable | None = None

    def predict(self, model: nnx.Module, batch: Batch, rngs: nnx.Rngs | None = None):
        """The model's output on ``batch``."""
        if self.forward is not None:
            return self.forward(model, batch, rngs)
        return _call_model(model, batch, rngs, self.inputs)

    def weights(self, batch: Batch):
        """Per-entry loss weights of ``batch``."""
        return self.mask(batch) if self.mask is not None else batch["mask"]

    def all_metrics(self) -> dict[str, metrics_lib.Metric]:
        """The streamed metrics, with ``loss`` first."""
        return {"loss": metrics_lib.loss_metric(self.loss), **dict(self.metrics)}


def classification(num_classes: int | None = None, *, label_smoothing: float = 0.0) -> Task:
    """Softmax cross-entropy with accuracy (integer labels)."""
    if label_smoothing:
        loss = lambda p, t, m=None: losses.softmax_cross_entropy(  # noqa: E731
            p, t, m, label_smoothing=label_smoothing)
    else:
        loss = losses.softmax_cross_entropy
    return Task(loss=loss, metrics={"accuracy": metrics_lib.accuracy})


def binary_classification() -> Task:
    """Sigmoid cross-entropy on one logit per example, with accuracy."""
    return Task(loss=losses.binary_cross_entropy, metrics={"accuracy": metrics_lib.accuracy})


def regression() -> Task:
    """Mean squared error with ``mse`` and ``r2``."""
    return Task(loss=losses.mse, metrics={"mse": metrics_lib.mse, "r2": metrics_lib.r2})


TEXT_INPUT_KEYS = ("chars", "char_mask")  # optional model inputs besides tokens


def model_inputs(batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """The model input dict `{"tokens", "mask"[, "chars", "char_mask"]}` of a dataset batch."""
    inputs = {"tokens": batch["tokens"], "mask": batch["token_mask"]}
    inputs.update({key: batch[key] for key in TEXT_INPUT_KEYS if key in batch})
    return inputs


def _text_forward(model: nnx.Module, batch: Batch, rngs: nnx.Rngs | None) -> jax.Array:
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
                forward=_text_forward, mask=per_token_weights, preprocess=preprocess)


def language_model_task() -> Task:
    """Next-token cross-entropy with `perplexity` (exp of the mean per-token loss) and accuracy."""
    loss = losses.softmax_cross_entropy
    return Task(loss=loss, metrics={"perplexity": metrics_lib.perplexity_metric(loss),
                                    "accuracy": metrics_lib.accuracy},
                forward=_text_forward, mask=per_token_weights)


def sequence_classification_task() -> Task:
    """One label per sequence: softmax cross-entropy and accuracy (for `RNNClassifier`)."""
    return Task(loss=losses.softmax_cross_entropy, metrics={"accuracy": metrics_lib.accuracy},
                forward=_text_forward)


def _neighbour_logits(model: nnx.Module, batch, rngs) -> jax.Array:
    """Bag-of-words logits `[B, V]` from the final state, repeated over the `y` positions
    `[B, 2T, V]`."""
    _, final = model.rnn(model.embed(batch["tokens"]), batch["token_mask"], rngs=rngs,
                         return_final_state=True)
    logits = model.head(final)
    return jnp.broadcast_to(logits[:, None, :], batch["y"].shape + logits.shape[-1:])


def neighbour_words_task() -> Task:
    """Softmax cross-entropy of every known neighbour word under the sentence's one distribution."""
    return Task(loss=losses.softmax_cross_entropy, metrics={}, forward=_neighbour_logits,
                mask=per_token_weights)
