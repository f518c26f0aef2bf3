"""One API for sentence vectors: `encoder.embed(sentences) -> float32 [n, d]`.

Encoders:

* `MeanPoolEncoder`: the mean of the known word vectors (e.g. word2vec's, or
  random ones as a baseline: `random_word_vectors`);
* `SIFEncoder`: smooth-inverse-frequency weights and common-component removal
  (Arora et al., 2017), the component fitted once on reference sentences so that
  every call embeds with the same projection;
* `RNNSentenceEncoder`: the final hidden state of a trained recurrent language
  model over `<s> w1 … wn`, or the mean / max of its states (see
  `jaxdl.recipes.sentence_encoder` for training);
* `TransformerSentenceEncoder`: a pretrained BERT-family encoder's mean-pooled
  token states, as sentence-transformers makes them (`jaxdl.pretrained.load_bert`,
  `jaxdl.evaluation.encoder_embeddings`).

`compare_encoders` scores any of them by a linear probe and nearest-sentence retrieval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdl.data.text import Vocab, pad_batch
from jaxdl.errors import ConfigError, DataError
from jaxdl.evaluation.encoder_embeddings import DEFAULT_BUCKETS, encode_sentences
from jaxdl.evaluation.probe import linear_probe_accuracy, retrieval_accuracy
from jaxdl.evaluation.sentence_pooling import mean_pool, sif_embed
from jaxdl.evaluation.word_vectors import WordVectors

Sentences = Sequence[Sequence[str]]


class SentenceEncoder(Protocol):
    """Anything that maps token lists to fixed vectors."""

    dim: int

    def embed(self, sentences: Sentences) -> np.ndarray:
        """float32 `[n, dim]` vectors of n token lists."""
        ...


def random_word_vectors(words: Sequence[str], dim: int, *, seed: int = 0) -> WordVectors:
    """Standard-normal vectors `[V, dim]` for `words`: the untrained baseline's word table."""
    rng = np.random.default_rng(seed)
    return WordVectors(list(words), rng.standard_normal((len(words), dim)).astype(np.float32))


class MeanPoolEncoder:
    """Mean of the in-vocabulary word vectors (zeros when no word is known).

    Args:
        vectors: word vectors `[V, D]`.
    """

    def __init__(self, vectors: WordVectors):
        self.vectors, self.dim = vectors, vectors.dim

    def embed(self, sentences: Sentences) -> np.ndarray:
        """float32 `[n, D]`."""
        return mean_pool(self.vectors, sentences)


class SIFEncoder:
    """SIF-weighted mean with the common components of `reference` sentences removed.

    Args:
        vectors: word vectors `[V, D]`.
        word_freq: word → corpus count (normalised inside).
        reference: sentences whose weighted means define the removed principal
            directions (e.g. the training corpus); fitted once here.
        a: SIF smoothing constant. remove_components: directions removed.
    """

    def __init__(self, vectors: WordVectors, word_freq: Mapping[str, float], reference: Sentences, *,
                 a: float = 1e-3, remove_components: int = 1):
        if remove_components < 0:
            raise ConfigError(f"SIFEncoder remove_components={remove_components!r}: expected an integer ≥ 0")
        self.vectors, self.word_freq, self.a, self.dim = vectors, dict(word_freq), a, vectors.dim
        weighted = sif_embed(vectors, reference, self.word_freq, a=a, remove_components=0)
        if remove_components and len(weighted) > remove_components:
            # Principal directions of the uncentred weighted means, as in the paper's code.
            _, _, directions = np.linalg.svd(weighted.astype(np.float64), full_matrices=False)
            self.components = directions[:remove_components]
        else:
            self.components = np.zeros((0, vectors.dim))

    def embed(self, sentences: Sentences) -> np.ndarray:
        """float32 `[n, D]`; zeros for a sentence without a known word."""
        weighted = sif_embed(self.vectors, sentences, self.word_freq, a=self.a, remove_components=0)
        nonzero = np.any(weighted != 0, axis=1, keepdims=True)
        removed = weighted - nonzero * ((weighted @ self.components.T) @ self.components)
        return removed.astype(np.float32)


POOLINGS = ("final", "mean", "max")


class RNNSentenceEncoder:
    """The hidden states of a recurrent language model over `<s> w1 … wn`, pooled.

    Args:
        model: a model with `embed` (token ids → vectors) and `rnn` (an `RNN`), e.g.
            `RNNLanguageModel`; its dropout is switched off here.
        vocab: the model's vocabulary (unknown words → `<unk>`).
        max_len: tokens read per sentence, `<s>` included (the rest is cut).
        batch_size: sentences per jitted call (the last call is padded).
        pooling: `"final"`, the state after the last word (the classic sentence
            vector); `"mean"` or `"max"` over the top layer's states at every real
            position (`<s>` included).
    """

    def __init__(self, model: nnx.Module, vocab: Vocab, *, max_len: int = 64, batch_size: int = 256,
                 pooling: str = "final"):
        if max_len < 2:
            raise ConfigError(f"RNNSentenceEncoder max_len={max_len!r}: expected ≥ 2 (<s> and one word)")
        if pooling not in POOLINGS:
            raise ConfigError(f"RNNSentenceEncoder pooling={pooling!r}: expected one of {POOLINGS}")
        self.vocab, self.max_len, self.batch_size, self.pooling = vocab, max_len, batch_size, pooling
        graphdef, state = nnx.split(nnx.view(model, deterministic=True, raise_if_not_found=False))

        def final_state(state, tokens, mask):
            model = nnx.merge(graphdef, state)
            outputs, final = model.rnn(model.embed(tokens), mask, return_final_state=True)
            if pooling == "mean":  # outputs are zero at padding
                return outputs.sum(axis=1) / jnp.maximum(mask.sum(axis=1, keepdims=True), 1.0)
            if pooling == "max":
                return jnp.where(mask[..., None] > 0, outputs, -jnp.inf).max(axis=1)
            return final

        self._final_state, self._state = jax.jit(final_state), state
        probe = jax.eval_shape(final_state, state, jnp.zeros((1, 2), jnp.int32), jnp.ones((1, 2), jnp.float32))
        self.dim = int(probe.shape[-1])

    def embed(self, sentences: Sentences) -> np.ndarray:
        """float32 `[n, H]` pooled hidden states (H = the top layer's output size)."""
        if len(sentences) == 0:
            raise DataError("RNNSentenceEncoder.embed: no sentences; expected at least one token list")
        ids = [self.vocab.encode(list(s)[: self.max_len - 1], add_bos=True) for s in sentences]
        tokens, mask = pad_batch(ids, max_len=self.max_len, pad_id=self.vocab.pad_id)
        out = []
        for start in range(0, len(ids), self.batch_size):
            chunk_tokens, chunk_mask = tokens[start:start + self.batch_size], mask[start:start + self.batch_size]
            real = len(chunk_tokens)
            pad = [(0, self.batch_size - real), (0, 0)]
            # Padding rows get one real token so that every row has a final state.
            chunk_mask = np.pad(chunk_mask, pad)
            chunk_mask[real:, 0] = 1.0
            final = self._final_state(self._state, np.pad(chunk_tokens, pad), chunk_mask)
            out.append(np.asarray(final, np.float32)[:real])
        return np.concatenate(out)


class TransformerSentenceEncoder:
    """Mean-pooled (and L2-normalised) states of a Transformer encoder.

    Args:
        encoder: a `TransformerEncoder`, e.g. `load_bert(directory)`.
        tokenizer: its `BertTokenizer` (`BertTokenizer.from_directory(directory)`).
        batch_size, normalize, buckets: as `encode_sentences`.

    `embed` takes token lists, as the other encoders do, joined by spaces (the
    tokenizer splits them again), or plain strings.
    """

    def __init__(self, encoder: nnx.Module, tokenizer, *, batch_size: int = 64,
                 normalize: bool = True, buckets: Sequence[int] = DEFAULT_BUCKETS):
        self.encoder, self.tokenizer, self.dim = encoder, tokenizer, encoder.config.hidden_size
        self.options = dict(batch_size=batch_size, normalize=normalize, buckets=tuple(buckets))

    def embed(self, sentences: Sentences | Sequence[str]) -> np.ndarray:
        """float32 `[n, hidden_size]`."""
        text = [s if isinstance(s, str) else " ".join(s) for s in sentences]
        return encode_sentences(self.encoder, self.tokenizer, text, **self.options)


def compare_encoders(
    encoders: Mapping[str, SentenceEncoder], train: tuple[Sentences, Sequence], test: tuple[Sentences, Sequence],
) -> list[dict]:
    """Scores each encoder by a linear probe (train → test) and by retrieval on the test sentences.

    Args:
        encoders: name → encoder.
        train, test: `(sentences, labels)`.

    Returns:
        Rows `{"encoder", "dim", "probe_accuracy", "retrieval_accuracy"}`, in the given order.
    """
    (train_x, train_y), (test_x, test_y) = train, test
    labels = sorted(set(train_y))
    index = {label: i for i, label in enumerate(labels)}
    train_ids = np.asarray([index[y] for y in train_y])
    test_ids = np.asarray([index.get(y, -1) for y in test_y])
    rows = []
    for name, encoder in encoders.items():
        train_vectors, test_vectors = encoder.embed(train_x), encoder.embed(test_x)
        rows.append({
            "encoder": name, "dim": int(train_vectors.shape[1]),
            "probe_accuracy": linear_probe_accuracy(train_vectors, train_ids, test_vectors, test_ids),
            "retrieval_accuracy": retrieval_accuracy(test_vectors, test_ids),
        })
    return rows
