"""Recurrent models for text: a sequence tagger, a language model, a classifier.

Every model takes a dict of padded arrays (see `jaxdl.data.text`):
`{"tokens": int32 [B, T], "mask": [B, T]}` (1 real, 0 padding), plus for the
tagger's character features `"chars": int32 [B, T, L]` and `"char_mask" [B, T, L]`.
Dropout draws from the `rngs` given at call time (docs/DESIGN.md, "Contracts between parts").
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdl.errors import ConfigError, DataError
from jaxdl.models.rnn import RNN


def tokens_and_mask(inputs: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """Reads `tokens [B, T]` and `mask [B, T]` (float32; all ones if absent) from a model input dict."""
    if "tokens" not in inputs:
        raise DataError(f"model input has keys {sorted(inputs)}; expected a 'tokens' int32 [B, T] array")
    tokens = inputs["tokens"]
    mask = inputs.get("mask")
    if mask is None:
        mask = jnp.ones(tokens.shape, jnp.float32)
    return tokens, jnp.asarray(mask, jnp.float32)


class LSTMTagger(nnx.Module):
    """Per-token tagger: word embeddings (+ optional char-LSTM features) -> (Bi)LSTM -> tag logits.

    The character features follow the PyTorch sequence-models tutorial's
    exercise: a bidirectional LSTM reads each word's characters and its final
    states (forward at the last character, backward at the first) are
    concatenated to the word embedding, so unseen words still get a
    representation from their spelling.
    """

    def __init__(
        self,
        vocab_size: int,
        num_tags: int,
        embed_dim: int,
        hidden_dim: int,
        *,
        bidirectional: bool = True,
        num_layers: int = 1,
        char_vocab_size: int | None = None,
        char_embed_dim: int = 16,
        char_hidden_dim: int = 16,
        dropout: float = 0.0,
        rngs: nnx.Rngs,
    ):
        """Creates the tagger.

        Args:
          vocab_size: word vocabulary size (ids in [0, vocab_size)).
          num_tags: number of output tags.
          embed_dim: word embedding size.
          hidden_dim: LSTM hidden size per direction.
          bidirectional: use a BiLSTM over words.
          num_layers: stacked word-level LSTM layers.
          char_vocab_size: character vocabulary size; None disables char features.
          char_embed_dim: character embedding size.
          char_hidden_dim: character LSTM hidden size per direction.
          dropout: dropout on the word representation and the LSTM outputs.
          rngs: parameter initialisation RNGs.
        """
        self.embed = nnx.Embed(vocab_size, embed_dim, rngs=rngs)
        self.use_chars = char_vocab_size is not None
        word_features = embed_dim
        if self.use_chars:
            self.char_embed = nnx.Embed(char_vocab_size, char_embed_dim, rngs=rngs)
            self.char_rnn = RNN(char_embed_dim, char_hidden_dim, cell="lstm", bidirectional=True, rngs=rngs)
            word_features += self.char_rnn.output_features
        self.rnn = RNN(
            word_features, hidden_dim, cell="lstm", num_layers=num_layers,
            bidirectional=bidirectional, dropout=dropout, rngs=rngs,
        )
        self.dropout = nnx.Dropout(dropout)
        self.head = nnx.Linear(self.rnn.output_features, num_tags, rngs=rngs)

    def char_features(self, chars: jax.Array, char_mask: jax.Array) -> jax.Array:
        """Character-LSTM features per word.

        Args:
          chars: int32 `[B, T, L]` character ids.
          char_mask: `[B, T, L]`, 1 for real characters.

        Returns:
          `[B, T, 2 * char_hidden_dim]`; zero for words with no characters (padding).
        """
        batch, time, length = chars.shape
        flat_chars = chars.reshape(batch * time, length)
        flat_mask = jnp.asarray(char_mask, jnp.float32).reshape(batch * time, length)
        _, final = self.char_rnn(self.char_embed(flat_chars), flat_mask, return_final_state=True)
        return final.reshape(batch, time, -1)

    def __call__(self, inputs: Mapping[str, jax.Array], *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """Tag logits `[B, T, num_tags]` for a dict with tokens/mask (and chars/char_mask if enabled)."""
        tokens, mask = tokens_and_mask(inputs)
        words = self.embed(tokens)
        if self.use_chars:
            if "chars" not in inputs or "char_mask" not in inputs:
                raise DataError(
                    "LSTMTagger was built with char_vocab_size, so its input needs 'chars' "
                    f"[B, T, L] and 'char_mask' [B, T, L]; got keys {sorted(inputs)}"
                )
            words = jnp.concatenate([words, self.char_features(inputs["chars"], inputs["char_mask"])], -1)
        words = self.dropout(words, rngs=rngs)
        hidden = self.dropout(self.rnn(words, mask, rngs=rngs), rngs=rngs)
        return self.head(hidden)


class RNNLanguageModel(nnx.Module):
    """Next-token language model: embedding -> stacked RNN -> vocabulary logits."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        *,
        rngs: nnx.Rngs,
    ):
        """Creates the model.

        Args:
          vocab_size: vocabulary size V (word or character level).
          embed_dim: token embedding size.
          hidden_dim: recurrent hidden size.
          num_layers: stacked recurrent layers.
          cell: "lstm", "gru" or "rnn".
          dropout: dropout on embeddings, between layers and before the head.
          rngs: parameter initialisation RNGs.
        """
        self.vocab_size = vocab_size
        self.embed = nnx.Embed(vocab_size, embed_dim, rngs=rngs)
        self.rnn = RNN(embed_dim, hidden_dim, cell=cell, num_layers=num_layers, dropout=dropout, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)
        self.head = nnx.Linear(hidden_dim, vocab_size, rngs=rngs)

    def __call__(self, inputs: Mapping[str, jax.Array], *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """Logits `[B, T, V]`; position t predicts token t+1 of `inputs["tokens"]`."""
        tokens, mask = tokens_and_mask(inputs)
        hidden = self.rnn(self.dropout(self.embed(tokens), rngs=rngs), mask, rngs=rngs)
        return self.head(self.dropout(hidden, rngs=rngs))

    def sample(self, key: jax.Array, prefix_ids: jax.Array, length: int, temperature: float = 1.0) -> jax.Array:
        """Samples a continuation of a prefix, one token at a time (dropout off).

        Args:
          key: PRNG key; the same key gives the same sample.
          prefix_ids: int `[P]` or `[B, P]` ids to condition on (P >= 1, e.g. `<s>`).
          length: number of tokens to generate (static).
          temperature: divides the logits; lower is more conservative; 0 means greedy.

        Returns:
          int32 `[length]` (or `[B, length]`) generated ids, the prefix excluded.
        """
        if temperature < 0:
            raise ConfigError(f"temperature={temperature} must be >= 0 (0 = greedy)")
        prefix = jnp.asarray(prefix_ids, jnp.int32)
        unbatched = prefix.ndim == 1
        prefix = prefix[None] if unbatched else prefix
        if prefix.shape[1] < 1:
            raise DataError("prefix_ids is empty; give at least one token (e.g. the <s> id)")
        model = nnx.view(self, deterministic=True)
        hidden, carries = model.rnn.run_with_carries(model.embed(prefix))
        logits = model.head(hidden[:, -1])

        def step(state, step_key):
            carries, logits = state
            if temperature == 0:
                token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
            else:
                token = jax.random.categorical(step_key, logits / temperature, axis=-1).astype(jnp.int32)
            hidden, carries = model.rnn.run_with_carries(model.embed(token[:, None]), carries=carries)
            return (carries, model.head(hidden[:, 0])), token

        _, tokens = jax.lax.scan(step, (carries, logits), jax.random.split(key, length))
        tokens = jnp.swapaxes(tokens, 0, 1)  # [B, length]
        return tokens[0] if unbatched else tokens


class RNNClassifier(nnx.Module):
    """Sequence classifier: embedding -> RNN -> pooled features `[B, D]` -> linear head.

    `embed` is an `nnx.Embed`, so pretrained vectors can be loaded into
    `embed.embedding`; `features` exposes the pooled encoding for probing.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int,
        hidden_dim: int,
        cell: str = "lstm",
        bidirectional: bool = False,
        pooling: str = "last",
        num_layers: int = 1,
        dropout: float = 0.0,
        *,
        rngs: nnx.Rngs,
    ):
        """Creates the classifier.

        Args:
          vocab_size: vocabulary size.
          num_classes: number of classes.
          embed_dim: embedding size.
          hidden_dim: recurrent hidden size per direction.
          cell: "lstm", "gru" or "rnn".
          bidirectional: use both directions (features size 2 * hidden_dim).
          pooling: "last" (final state at each sequence's last real token, and
            the backward state at its first) or "mean" (mean over real positions).
          num_layers: stacked recurrent layers.
          dropout: dropout on embeddings, between layers and on the features.
          rngs: parameter initialisation RNGs.
        """
        if pooling not in ("last", "mean"):
            raise ConfigError(f"pooling={pooling!r}; expected 'last' or 'mean'")
        self.pooling = pooling
        self.embed = nnx.Embed(vocab_size, embed_dim, rngs=rngs)
        self.rnn = RNN(
            embed_dim, hidden_dim, cell=cell, num_layers=num_layers,
            bidirectional=bidirectional, dropout=dropout, rngs=rngs,
        )
        self.dropout = nnx.Dropout(dropout)
        self.head = nnx.Linear(self.rnn.output_features, num_classes, rngs=rngs)

    def features(self, inputs: Mapping[str, jax.Array], *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """Pooled sequence encoding `[B, D]`, D = hidden_dim * (2 if bidirectional else 1)."""
        tokens, mask = tokens_and_mask(inputs)
        embedded = self.dropout(self.embed(tokens), rngs=rngs)
        outputs, final = self.rnn(embedded, mask, rngs=rngs, return_final_state=True)
        if self.pooling == "last":
            return final
        # Outputs are already zero at padding, so a plain sum is the masked sum.
        count = jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)
        return jnp.sum(outputs, axis=1) / count

    def __call__(self, inputs: Mapping[str, jax.Array], *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """Class logits `[B, num_classes]`."""
        return self.head(self.dropout(self.features(inputs, rngs=rngs), rngs=rngs))
