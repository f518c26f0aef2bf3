"""A sentence classifier on a Transformer encoder: mean-pooled token states, a linear head.

The pooling is the one sentence-transformers trains MiniLM-style encoders with
(the mean of the token states over the attention mask), so a pretrained
encoder's fine-tuning starts from the features its frozen probe reads.

Parameter paths: ``encoder/...`` (``TransformerEncoder``'s, e.g.
``encoder/layers/5/output/kernel``) and ``head/kernel``, ``head/bias``.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdl.models.transformer_encoder import TransformerEncoder


class EncoderClassifier(nnx.Module):
    """``head(dropout(masked_mean(encoder(input_ids, attention_mask))))``.

    Args:
      encoder: a ``TransformerEncoder`` (pretrained or freshly initialised).
      num_classes: C.
      rngs: initialises the head (normal, std ``encoder.config.initializer_range``;
        bias 0, as BERT's classification heads).
    """

    def __init__(self, encoder: TransformerEncoder, num_classes: int, *, rngs: nnx.Rngs):
        self.encoder = encoder
        self.dropout = nnx.Dropout(encoder.config.dropout)
        init = nnx.initializers.normal(encoder.config.initializer_range)
        self.head = nnx.Linear(encoder.config.hidden_size, num_classes, kernel_init=init,
                               rngs=rngs)

    def __call__(self, inputs: Mapping[str, jax.Array], *,
                 rngs: nnx.Rngs | None = None) -> jax.Array:
        """Logits ``[B, C]`` of ``inputs["input_ids"]`` and ``inputs["attention_mask"]``
        (int ``[B, T]``); dropout follows the module's ``deterministic`` view."""
        mask = inputs["attention_mask"]
        states = self.encoder(inputs["input_ids"], mask, deterministic=None, rngs=rngs)
        weights = jnp.asarray(mask, states.dtype)[..., None]
        # A row without tokens (a padded evaluation row) pools to zeros, not NaN.
        pooled = (states * weights).sum(1) / jnp.maximum(weights.sum(1), 1.0)
        return self.head(self.dropout(pooled, rngs=rngs))


__all__ = ["EncoderClassifier"]
