"""An LSTM language model (word or character level) against a unigram baseline.

Data: `config.data.corpus` (a text file, or a directory of them; one sentence
or paragraph per line), or by default the embedded English corpus of the
Python documentation (`jaxdl.data.stdlib_corpus`, ~227k tokens). Sentences are
split into train / held-out by contiguous blocks of 20 (`split_in_blocks`),
joined into one stream with `</s>` after each sentence, and cut into chunks of
`config.data.seq_len` (each starts from a zero state). Word level keeps the
`config.data.max_vocab` most frequent words (the rest are `<unk>`); character
level reads the tokenized sentences joined by single spaces.

Baseline: an add-one smoothed unigram model of the training tokens over the
same vocabulary (`<unk>` included), scored on exactly the same held-out targets.
The summary adds `samples`: text generated from `</s>` (a sentence start) at
`config.sample.temperature`.

`config.data.source="stream"` reads the corpus from disk in passes instead
(count sentences, count training words, encode) into int32 id files under the
workdir, and trains and evaluates from them chunk by chunk (`data.workers`,
`data.worker_mode`, `data.prefetch`): the same split, vocabulary, batches and
parameters as `"arrays"`, without holding the corpus.

Expected (default word level): held-out perplexity ≈ 86 against the unigram's
≈ 327 (character level: ≈ 3.9 against ≈ 20.1). Details in docs/SEQUENCE_RESULTS.md.
"""

from __future__ import annotations

import os
import tempfile

import jax
import numpy as np
from flax import nnx

from jaxdl.config import check_choice, default_config
from jaxdl.data.sequence_sets import (dataset_summary, language_model_dataset, split_in_blocks,
                                      token_stream, unigram_perplexity)
from jaxdl.data.source_choice import streams
from jaxdl.data.text import Vocab
from jaxdl.data.token_chunks import language_model_streams
from jaxdl.models.sequence import RNNLanguageModel
from jaxdl.recipes.text import load_corpus, save_text_run
from jaxdl.train.task import language_model_task
from jaxdl.train.loop import fit
from jaxdl.workdir import fit_summary
from jaxdl.config_schema import POSITIVE, reads_transfer


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = {**reads_transfer("frozen", "lr_multipliers"),
                 "sample.temperature": POSITIVE}


def get_config():
    config = default_config()
    config.experiment = "language_model"
    config.data = dict(corpus="", level="word", lower=True, max_vocab=10000, min_count=2,
                       seq_len=32, test_fraction=0.1, split_seed=0, encoding="utf-8",
                       source="arrays", workers=0, worker_mode="threads", prefetch=2)
    config.model = dict(cell="lstm", embed_dim=128, hidden_dim=256, num_layers=1, dropout=0.2)
    config.sample = dict(num=3, length=30, temperature=0.8)
    config.optimizer.update(name="adam", lr=3e-3, grad_clip_norm=1.0, schedule="cosine",
                            min_lr_ratio=0.1)
    config.train.update(batch_size=32, num_steps=1000, eval_batch_size=256, log_every=100,
                        eval_every=500, steps_per_loop=20)
    config.train.eval_train = False  # the held-out split is what matters; saves a pass
    config.checkpoint.every_steps = 500
    return config


def load_sentences(config) -> list[list[str]]:
    """Token lists of the configured corpus, as words or as characters."""
    check_choice(config, "data.level", ("word", "char"))
    sentences = load_corpus(config.data)
    if config.data.level == "char":
        return [list(" ".join(sentence)) for sentence in sentences]
    return sentences


def sample_text(model: RNNLanguageModel, vocab: Vocab, config) -> list[str]:
    """`config.sample.num` samples of `config.sample.length` tokens, each from a sentence start."""
    prefix = np.full((config.sample.num, 1), vocab.eos_id, np.int32)
    graphdef, state = nnx.split(model)
    generate = jax.jit(lambda state, key, prefix: nnx.merge(graphdef, state).sample(
        key, prefix, config.sample.length, config.sample.temperature))
    ids = np.asarray(generate(state, jax.random.key(config.seed), prefix))
    joiner = "" if config.data.level == "char" else " "
    return [joiner.join(vocab.decode(row)).replace("</s>", " </s> ") for row in ids]


def run(config, workdir: str | None):
    stream = streams(config)
    data = config.data
    scratch = tempfile.TemporaryDirectory() if workdir is None else None
    if stream:
        vocab, train, test, unigram, summary = language_model_streams(
            config, os.path.join(workdir or scratch.name, "token_streams"),
            suffix=f".p{jax.process_index()}")
    else:
        train_sentences, test_sentences = split_in_blocks(
            load_sentences(config), test_fraction=data.test_fraction, seed=data.split_seed)
        vocab = Vocab.build(train_sentences, min_count=data.min_count,
                            max_size=data.max_vocab if data.level == "word" else None)
        train, test = (language_model_dataset(token_stream(s, vocab), seq_len=data.seq_len,
                                              name=name)
                       for name, s in (("train", train_sentences), ("test", test_sentences)))
        unigram = unigram_perplexity(train, test, len(vocab))
        summary = dataset_summary({"train": train, "test": test})
    model = RNNLanguageModel(len(vocab), config.model.embed_dim, config.model.hidden_dim,
                             config.model.num_layers, config.model.cell, config.model.dropout,
                             rngs=nnx.Rngs(config.seed))
    try:
        result = fit(model, language_model_task(), train, eval_data={"test": test},
                     config=config, workdir=workdir)
    finally:
        if stream:
            train.close()
        if scratch is not None:
            scratch.cleanup()
    save_text_run(workdir, result, vocab)
    model_perplexity = result.metrics["test"]["perplexity"]
    return fit_summary(
        config.experiment, result, config,
        baselines={"unigram": {"test": {"perplexity": unigram}}},
        perplexity_ratio_unigram_over_model=unigram / model_perplexity,
        vocab_size=len(vocab), level=config.data.level, data=summary,
        samples=sample_text(result.model, vocab, config))
