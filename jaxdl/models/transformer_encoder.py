"""A BERT-style Transformer encoder: embeddings, post-LayerNorm self-attention blocks.

The architecture is BERT's (Devlin et al., 2019), as Hugging Face's ``BertModel``
computes it, so that BERT-family checkpoints of any size load into it
(``jaxdl.pretrained.bert_checkpoint``):

* embeddings: token + absolute position + segment (token type) embeddings, summed,
  then LayerNorm and dropout;
* each block: multi-head self-attention over the unmasked keys (dropout on the
  attention probabilities), an output projection, dropout, ``LayerNorm(x + attn)``;
  then ``Linear -> GELU (exact, erf) -> Linear``, dropout, ``LayerNorm(x + mlp)``.

Parameter paths (``jaxdl.optim.param_path``) read like BERT's tensor names:
``embeddings/word/embedding``, ``layers/3/attention/query/kernel``,
``layers/3/attention_norm/scale``, ``layers/3/intermediate/kernel``,
``layers/3/output_norm/bias``, so ``lr_multipliers`` and ``frozen`` regexes can
address a layer (``^layers/[0-2]/``) or the embeddings (``^embeddings/``).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdl.errors import ConfigError, DataError


@dataclasses.dataclass(frozen=True)
class TransformerEncoderConfig:
    """Sizes of a ``TransformerEncoder`` (BERT-base's defaults but the vocabulary).

    Attributes:
      vocab_size: token ids lie in ``[0, vocab_size)``.
      hidden_size: ``H``, the width of every token state; a multiple of ``num_heads``.
      num_layers: Transformer blocks.
      num_heads: attention heads per block (head size ``H / num_heads``).
      intermediate_size: the MLP's hidden width.
      max_positions: the longest sequence the position table covers.
      type_vocab_size: segment ids lie in ``[0, type_vocab_size)``.
      layer_norm_eps: the epsilon of every LayerNorm.
      dropout: rate after the embeddings and after each block's two sub-layers.
      attention_dropout: rate on the attention probabilities.
      initializer_range: standard deviation of the normal initialisation of
        kernels and embedding tables (BERT's ``initializer_range``).
    Raises:
      ConfigError: on construction, a size that is not a positive integer, a
        hidden size that the heads do not divide, an epsilon that is not > 0, or a
        rate outside ``[0, 1)``; the message names the field and the value.
    """

    vocab_size: int
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_positions: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1
    attention_dropout: float = 0.1
    initializer_range: float = 0.02

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                     "intermediate_size", "max_positions", "type_vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"TransformerEncoderConfig.{name}={value!r}: expected a "
                                  "positive integer")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"TransformerEncoderConfig.hidden_size={self.hidden_size} is not a multiple of "
                f"num_heads={self.num_heads}; expected hidden_size = num_heads x head size")
        for name in ("layer_norm_eps", "initializer_range"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"TransformerEncoderConfig.{name}={value!r}: expected a "
                                  "number > 0")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value < 1:
                raise ConfigError(f"TransformerEncoderConfig.{name}={value!r}: expected a "
                                  "rate in [0, 1)")

    @property
    def head_size(self) -> int:
        """``hidden_size / num_heads``."""
        return self.hidden_size // self.num_heads


def _dense(config: TransformerEncoderConfig, fan_in: int, fan_out: int, rngs: nnx.Rngs):
    init = nnx.initializers.normal(config.initializer_range)
    return nnx.Linear(fan_in, fan_out, kernel_init=init, rngs=rngs)


def _layer_norm(config: TransformerEncoderConfig, rngs: nnx.Rngs) -> nnx.LayerNorm:
    # Two-pass variance, as torch computes it: E[x^2] - E[x]^2 loses digits when the
    # mean is large, and the reference check compares to 1e-4 of the largest value.
    return nnx.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps,
                         use_fast_variance=False, rngs=rngs)


def _dropout_on(layer: nnx.Dropout, deterministic: bool | None) -> bool:
    """Whether ``layer`` drops anything in this call (static: decided at trace time)."""
    if layer.rate == 0:
        return False
    return not (layer.deterministic if deterministic is None else deterministic)


class SelfAttention(nnx.Module):
    """Multi-head self-attention with BERT's ``query``/``key``/``value``/``output``.

    Call: ``x [B, T, H]``, ``keep [B, T]`` bool (True: a key that may be attended)
    ``-> [B, T, H]`` (before the residual and LayerNorm).
    """

    def __init__(self, config: TransformerEncoderConfig, *, rngs: nnx.Rngs):
        hidden = config.hidden_size
        self.num_heads, self.head_size = config.num_heads, config.head_size
        self.query = _dense(config, hidden, hidden, rngs)
        self.key = _dense(config, hidden, hidden, rngs)
        self.value = _dense(config, hidden, hidden, rngs)
        self.output = _dense(config, hidden, hidden, rngs)
        self.probs_dropout = nnx.Dropout(config.attention_dropout)

    def __call__(self, x: jax.Array, keep: jax.Array, *, deterministic: bool | None,
                 rngs: nnx.Rngs | None) -> jax.Array:
        batch, time, _ = x.shape
        heads = lambda t: t.reshape(batch, time, self.num_heads, self.head_size)  # noqa: E731
        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        mask = keep[:, None, None, :]  # every head and query sees the same keys
        if _dropout_on(self.probs_dropout, deterministic):
            # Dropout on the probabilities needs them materialised: the explicit path.
            logits = jnp.einsum("btnd,bsnd->bnts", q, k) / math.sqrt(self.head_size)
            logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
            probs = self.probs_dropout(jax.nn.softmax(logits, axis=-1),
                                       deterministic=deterministic, rngs=rngs)
            context = jnp.einsum("bnts,bsnd->btnd", probs, v)
        else:
            context = jax.nn.dot_product_attention(q, k, v, mask=mask)
        return self.output(context.reshape(batch, time, -1))


class EncoderLayer(nnx.Module):
    """One post-LayerNorm block: ``LN(x + drop(attn(x)))`` then ``LN(x + drop(mlp(x)))``.

    Call: ``x [B, T, H]``, ``keep [B, T]`` bool ``-> [B, T, H]``.
    """

    def __init__(self, config: TransformerEncoderConfig, *, rngs: nnx.Rngs):
        self.attention = SelfAttention(config, rngs=rngs)
        self.attention_norm = _layer_norm(config, rngs)
        self.intermediate = _dense(config, config.hidden_size, config.intermediate_size, rngs)
        self.output = _dense(config, config.intermediate_size, config.hidden_size, rngs)
        self.output_norm = _layer_norm(config, rngs)
        self.dropout = nnx.Dropout(config.dropout)

    def __call__(self, x: jax.Array, keep: jax.Array, *, deterministic: bool | None,
                 rngs: nnx.Rngs | None) -> jax.Array:
        drop = lambda t: self.dropout(t, deterministic=deterministic, rngs=rngs)  # noqa: E731
        x = self.attention_norm(
            x + drop(self.attention(x, keep, deterministic=deterministic, rngs=rngs)))
        hidden = jax.nn.gelu(self.intermediate(x), approximate=False)
        return self.output_norm(x + drop(self.output(hidden)))


class TransformerEncoder(nnx.Module):
    """BERT's encoder: embeddings and ``num_layers`` post-LayerNorm blocks.

    Args:
      config: the sizes (``TransformerEncoderConfig``).
      rngs: initialisation RNGs (kernels and tables ``N(0, initializer_range)``,
        biases 0, LayerNorm scale 1 and bias 0, as BERT initialises them).

    Attributes:
      config, embeddings (``word``, ``position``, ``token_type``, ``norm``), layers.
    """

    def __init__(self, config: TransformerEncoderConfig, *, rngs: nnx.Rngs):
        if not isinstance(config, TransformerEncoderConfig):
            raise ConfigError(f"TransformerEncoder config is a {type(config).__name__}; "
                              "expected a TransformerEncoderConfig")
        self.config = config
        init = nnx.initializers.normal(config.initializer_range)
        embed = lambda n: nnx.Embed(n, config.hidden_size, embedding_init=init,  # noqa: E731
                                    rngs=rngs)
        self.embeddings = nnx.Dict(
            word=embed(config.vocab_size), position=embed(config.max_positions),
            token_type=embed(config.type_vocab_size), norm=_layer_norm(config, rngs))
        self.embedding_dropout = nnx.Dropout(config.dropout)
        self.layers = nnx.List([EncoderLayer(config, rngs=rngs)
                                for _ in range(config.num_layers)])

    def __call__(self, input_ids: jax.Array, attention_mask: jax.Array,
                 token_type_ids: jax.Array | None = None, *,
                 deterministic: bool | None = True,
                 rngs: nnx.Rngs | None = None) -> jax.Array:
        """Token states of a padded batch.

        Args:
          input_ids: int32 ``[B, T]`` token ids, ``T <= config.max_positions``.
          attention_mask: ``[B, T]``, 1 for a token, 0 for padding (any numeric or
            bool dtype); padded positions are never attended to.
          token_type_ids: int32 ``[B, T]`` segment ids, or None for all zeros.
          deterministic: True (the default) switches dropout off; False applies it
            (draws from ``rngs``); None follows each Dropout's own ``deterministic``
            attribute, which ``nnx.view`` sets (``jaxdl.train`` builds its train and
            eval graphs that way).
          rngs: the ``dropout`` stream when dropout is on.
        Returns:
          float32 ``[B, T, hidden_size]``, the last block's states (padded positions
          hold values too; mask them out, as ``mean_pool`` does).
        Raises:
          DataError: shapes that disagree or a sequence longer than the position table.
        """
        if input_ids.ndim != 2 or attention_mask.shape != input_ids.shape:
            raise DataError(f"TransformerEncoder: input_ids {input_ids.shape} and "
                            f"attention_mask {attention_mask.shape}; expected both [B, T]")
        time = input_ids.shape[1]
        if time > self.config.max_positions:
            raise DataError(f"TransformerEncoder: sequences of {time} tokens; the position "
                            f"table has max_positions={self.config.max_positions} (truncate "
                            "the input, e.g. BertTokenizer max_length)")
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        elif token_type_ids.shape != input_ids.shape:
            raise DataError(f"TransformerEncoder: token_type_ids {token_type_ids.shape}; "
                            f"expected the shape of input_ids {input_ids.shape}")
        emb = self.embeddings
        x = (emb["word"](input_ids) + emb["token_type"](token_type_ids)
             + emb["position"].embedding[...][None, :time])
        x = self.embedding_dropout(emb["norm"](x), deterministic=deterministic, rngs=rngs)
        keep = jnp.asarray(attention_mask) != 0
        for layer in self.layers:
            x = layer(x, keep, deterministic=deterministic, rngs=rngs)
        return x
