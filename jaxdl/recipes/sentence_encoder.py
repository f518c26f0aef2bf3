"""A recurrent sentence encoder trained self-supervised, through the one loop (`fit`).

Two objectives, both on unlabelled running text:

* `"next_word"`: each sentence is one example, `<s> w1 … wn` predicting
  `w1 … wn </s>` (the sequence family's `language_model_task`); the state after
  the sentence summarises it well enough to predict what comes next;
* `"neighbour_words"`: the final state over `<s> w1 … wn` predicts the words of
  the previous and the next sentence (a bag of words, one softmax shared by
  all of them, as in FastSent), which rewards encoding what the passage is about.

`RNNSentenceEncoder` then reads the recurrent states as sentence vectors.
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
from jaxdl.train.loop import FitResult, fit
from jaxdl.train.task import language_model_task, neighbour_words_task

OBJECTIVES = ("next_word", "neighbour_words")


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


def neighbour_words_dataset(sentences: Sequence[Sequence[str]], vocab: Vocab, *, max_len: int,
                            name: str, a: float = 1e-3) -> ArrayDataset:
    """Sentence i as `tokens` `<s> w1 …` `[N, max_len]`; `y` `[N, 2·max_len]` the words of i−1 and i+1.

    `target_mask` weighs each known neighbour word w by a / (a + p(w)) (SIF's
    weight, p the word's share of `vocab.counts`; `<unk>` and padding get 0), so
    that the loss is about the passage's content words rather than "the";
    sentences are taken in corpus order, so neighbours are the adjacent lines.
    Rows with no known neighbour word are dropped.

    Args:
        sentences: running text, one token list per sentence. vocab: with counts.
        max_len: T. name: the split's name. a: the weighting constant (> 0).
    """
    if not isinstance(max_len, int) or max_len < 2:
        raise ConfigError(f"neighbour_words_dataset max_len={max_len!r}: expected an integer ≥ 2")
    inputs, targets = [], []
    encoded = [vocab.encode(s) for s in sentences]
    for i, ids in enumerate(encoded):
        if not len(ids):
            continue
        before = encoded[i - 1][:max_len] if i > 0 else encoded[i][:0]
        after = encoded[i + 1][:max_len] if i + 1 < len(encoded) else encoded[i][:0]
        words = np.concatenate([np.pad(before, (0, max_len - len(before))), np.pad(after, (0, max_len - len(after)))])
        if not np.any((words != vocab.pad_id) & (words != vocab.unk_id)):
            continue
        inputs.append(np.concatenate([[vocab.bos_id], ids])[:max_len])
        targets.append(words)
    if not inputs:
        raise DataError(f"split '{name}': no sentence with a known neighbour word; expected running text")
    tokens, token_mask = pad_batch(inputs, max_len=max_len, pad_id=vocab.pad_id)
    y = np.asarray(targets, np.int32)
    counts = np.asarray(vocab.counts, np.float64)
    weight = a / (a + counts / max(counts.sum(), 1.0))
    weight[[vocab.pad_id, vocab.unk_id]] = 0.0
    target_mask = weight[y].astype(np.float32)
    return ArrayDataset({"tokens": tokens, "token_mask": token_mask, "y": y, "target_mask": target_mask},
                        name=name)


def train_rnn_sentence_encoder(
    sentences: Sequence[Sequence[str]], *, config: ConfigDict, workdir: str | None = None,
    max_vocab: int = 5000, min_count: int = 2, max_len: int = 32, embed_dim: int = 64, hidden_dim: int = 128,
    cell: str = "lstm", eval_sentences: Sequence[Sequence[str]] | None = None, objective: str = "next_word",
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
        objective: `"next_word"` or `"neighbour_words"` (see the module docstring).

    Returns:
        (the encoder, whose vectors are `[n, hidden_dim]`; fit's result, with
        loss, perplexity and accuracy of next-word prediction).
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"sentence encoder objective={objective!r}: expected one of {OBJECTIVES}")
    vocab = Vocab.build(sentences, min_count=min_count, max_size=max_vocab)
    make_dataset, task = ((sentence_lm_dataset, language_model_task()) if objective == "next_word"
                          else (neighbour_words_dataset, neighbour_words_task()))
    train = make_dataset(sentences, vocab, max_len=max_len, name="train")
    eval_data = ({"test": make_dataset(eval_sentences, vocab, max_len=max_len, name="test")}
                 if eval_sentences else {})
    # RNNLanguageModel holds embed → rnn → head; the neighbour objective applies head to the final state.
    model = RNNLanguageModel(len(vocab), embed_dim, hidden_dim, cell=cell, rngs=nnx.Rngs(config.seed))
    result = fit(model, task, train, config=config, eval_data=eval_data, workdir=workdir)
    return RNNSentenceEncoder(result.model, vocab, max_len=max_len), result
