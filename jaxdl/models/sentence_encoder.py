"""A recurrent sentence encoder trained self-supervised: next-word language modelling per sentence.

Each sentence is one example, `<s> w1 … wn` predicting `w1 … wn </s>`, so the
model's state after the whole sentence has had to summarise it well enough to
predict what comes next; `RNNSentenceEncoder` then reads that final hidden state
as the sentence vector. Training goes through the one loop (`fit`) with the
sequence family's `language_model_task`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from flax import nnx
from ml_collections import ConfigDict

from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.text import Vocab, pad_batch
from jaxdl.errors import ConfigError, DataError
from jaxdl.evaluation.sentence_encoders import RNNSentenceEncoder
from jaxdl.models.sequence import RNNLanguageModel
from jaxdl.sequence_tasks import language_model_task
from jaxdl.train.loop import FitResult, fit


def sentence_lm_dataset(sentences: Sequence[Sequence[str]], vocab: Vocab, *, max_len: int,
                        name: str) -> ArrayDataset:
    """One next-word example per sentence: `tokens`, `y`, `token_mask`, `target_mask` `[N, max_len]`.

    Row i reads `<s> w1 … w(T-1)` and predicts `w1 … w(T-1) </s>` (a sentence
    longer than T-1 words is cut and its last target is the next word, not `</s>`).
    Empty sentences are skipped.

    Args:
        sentences: token lists. vocab: unknown words → `<unk>`.
        max_len: T, positions per row (≥ 2).
        name: the split's name.
    """
    if not isinstance(max_len, int) or max_len < 2:
        raise ConfigError(f"sentence_lm_dataset max_len={max_len!r}: expected an integer ≥ 2")
    inputs, targets = [], []
    for sentence in sentences:
        if not sentence:
            continue
        ids = vocab.encode(sentence, add_bos=True, add_eos=True)  # <s> w1 … wn </s>
        inputs.append(ids[:-1][:max_len])
        targets.append(ids[1:][:max_len])
    if not inputs:
        raise DataError(f"split '{name}': no non-empty sentence; expected token lists with at least one word")
    tokens, token_mask = pad_batch(inputs, max_len=max_len, pad_id=vocab.pad_id)
    y, _ = pad_batch(targets, max_len=max_len, pad_id=vocab.pad_id)
    return ArrayDataset({"tokens": tokens, "token_mask": token_mask, "y": y, "target_mask": token_mask},
                        name=name)


def train_rnn_sentence_encoder(
    sentences: Sequence[Sequence[str]], *, config: ConfigDict, workdir: str | None = None,
    max_vocab: int = 5000, min_count: int = 2, max_len: int = 32, embed_dim: int = 64, hidden_dim: int = 128,
    cell: str = "lstm", eval_sentences: Sequence[Sequence[str]] | None = None,
) -> tuple[RNNSentenceEncoder, FitResult]:
    """Trains an `RNNLanguageModel` on sentences with `fit` and wraps it as an encoder.

    Args:
        sentences: unlabelled training token lists.
        config: the fit config (optimizer, train, checkpoint keys of `default_config()`).
        workdir: checkpoints and metrics.jsonl (a re-run resumes); None in memory.
        max_vocab, min_count: the vocabulary (specials included in `max_vocab`).
        max_len: tokens per sentence, `<s>` included.
        embed_dim, hidden_dim, cell: the model (`"lstm"`, `"gru"` or `"rnn"`).
        eval_sentences: optional held-out sentences evaluated as split "test".

    Returns:
        (the encoder, whose vectors are `[n, hidden_dim]`; fit's result, with
        loss, perplexity and accuracy of next-word prediction).
    """
    vocab = Vocab.build(sentences, min_count=min_count, max_size=max_vocab)
    train = sentence_lm_dataset(sentences, vocab, max_len=max_len, name="train")
    eval_data = ({"test": sentence_lm_dataset(eval_sentences, vocab, max_len=max_len, name="test")}
                 if eval_sentences else {})
    model = RNNLanguageModel(len(vocab), embed_dim, hidden_dim, cell=cell, rngs=nnx.Rngs(config.seed))
    result = fit(model, language_model_task(), train, config=config, eval_data=eval_data, workdir=workdir)
    return RNNSentenceEncoder(result.model, vocab, max_len=max_len), result
