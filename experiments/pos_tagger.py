"""A BiLSTM part-of-speech tagger on CoNLL-U files, with optional character features.

Data: `config.data.train` and `config.data.test`, CoNLL-U files (e.g. a
Universal Dependencies treebank's `*-ud-train.conllu` / `*-ud-test.conllu`);
the tags are the UPOS column. Both are required: Python ships no treebank.
Multiword-token ranges and empty nodes are skipped; their syntactic words are
tagged (`jaxdl.data.formats.conllu.read_conllu`).

Model: word embeddings (looked up lower-cased when `config.data.lower`),
concatenated — if `config.model.char_features` — with a character BiLSTM's
final states over the word's original spelling (the PyTorch tutorial's
exercise), then a BiLSTM and a linear layer per token. Word dropout
(`config.model.word_dropout`) replaces training words by `<unk>` at random, so
the `<unk>` embedding that every unseen test word gets is trained.

Reports token accuracy on the test file and, as `test_oov`, accuracy on its
out-of-vocabulary words (words whose lookup form is not in the training
vocabulary). Sentences are padded to `config.data.max_len` words (0: the longest
sentence of either file, so nothing is truncated).

`--config.data.source=stream` reads the files a sentence at a time instead
(`jaxdl.recipes.text_streams`: vocabularies and tags counted in passes, training
sentences read per step on `data.workers`, `test` and `test_oov` evaluated batch
by batch); same batches, same parameters.

Expected: on a fixture whose unseen words are recognisable only by their
spelling (tests/test_sequence_experiments.py), OOV accuracy ≈ 1.0 with
character features against ≈ 0.25 without (docs/SEQUENCE_RESULTS.md).
"""

from __future__ import annotations

from flax import nnx

from jaxdl.config import default_config
from jaxdl.data.sequence_sets import (dataset_summary, out_of_vocabulary_mask, tagging_dataset,
                                      with_target_mask)
from jaxdl.data.source_choice import streams
from jaxdl.data.streaming import StreamingSource
from jaxdl.data.text import Vocab
from jaxdl.data.text_checks import label_set
from jaxdl.models.sequence import LSTMTagger
from jaxdl.recipes.text import load_tagged, save_text_run
from jaxdl.recipes.text_streams import reader_cache_dir, streamed_tagging
from jaxdl.train.task import tagging_task
from jaxdl.train.loop import fit
from jaxdl.workdir import fit_summary
from jaxdl.config_schema import reads_transfer


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = reads_transfer("frozen", "lr_multipliers")


def get_config():
    config = default_config()
    config.experiment = "pos_tagger"
    config.data = dict(train="", test="", lower=True, min_count=1, max_len=0, max_word_len=20,
                       encoding="utf-8", source="arrays", workers=0, worker_mode="threads", prefetch=2)
    config.model = dict(embed_dim=64, hidden_dim=64, num_layers=1, char_features=True,
                        char_embed_dim=16, char_hidden_dim=32, dropout=0.25, word_dropout=0.05)
    config.optimizer.update(name="adam", lr=2e-3, grad_clip_norm=5.0)
    config.train.update(batch_size=16, num_epochs=10, log_every=50, eval_every=0,
                        steps_per_loop=10)
    return config


def arrays_data(config):
    """`(vocab, tags, char_vocab, train, eval_data, oov_tokens, summary)`, in memory."""
    train_sentences, test_sentences = load_tagged(config.data)
    lower = config.data.lower
    vocab = Vocab.build(([w.lower() if lower else w for w, _ in s] for s in train_sentences),
                        min_count=config.data.min_count, source=config.data.train)
    tags = label_set((t for s in train_sentences for _, t in s),
                     (t for s in test_sentences for _, t in s), train_source=config.data.train,
                     test_source=config.data.test, kind="tag")  # training tags only
    char_vocab = (Vocab.build(list(w) for s in train_sentences for w, _ in s)
                  if config.model.char_features else None)
    max_len = config.data.max_len or max(len(s) for s in train_sentences + test_sentences)
    make = lambda sentences, name: tagging_dataset(  # noqa: E731
        sentences, vocab, tags, max_len=max_len, name=name, lower=lower,
        char_vocab=char_vocab, max_word_len=config.data.max_word_len)
    train, test = make(train_sentences, "train"), make(test_sentences, "test")
    oov = out_of_vocabulary_mask(test, vocab)
    eval_data = {"test": test}
    if oov.sum() > 0:
        eval_data["test_oov"] = with_target_mask(test, oov, name="test_oov")
    return (vocab, tags, char_vocab, train, eval_data, int(oov.sum()),
            dataset_summary({"train": train, "test": test}))


def run(config, workdir: str | None):
    stream = streams(config)
    if stream:
        d = streamed_tagging(config.data, reader_cache_dir(workdir),
                             char_features=config.model.char_features)
        vocab, tags, char_vocab, eval_data, oov_tokens, summary = (
            d.vocab, d.tags, d.char_vocab, d.eval_data, d.oov_tokens, d.summary)
        train = StreamingSource.from_config(d.train, config)
    else:
        vocab, tags, char_vocab, train, eval_data, oov_tokens, summary = arrays_data(config)
    m = config.model
    model = LSTMTagger(len(vocab), len(tags), m.embed_dim, m.hidden_dim, bidirectional=True,
                       num_layers=m.num_layers, char_vocab_size=len(char_vocab) if char_vocab else None,
                       char_embed_dim=m.char_embed_dim, char_hidden_dim=m.char_hidden_dim,
                       dropout=m.dropout, rngs=nnx.Rngs(config.seed))
    task = tagging_task(word_dropout_rate=m.word_dropout, unk_id=vocab.unk_id)
    try:
        result = fit(model, task, train, eval_data=eval_data, config=config, workdir=workdir)
    finally:
        if stream:
            train.close()
    save_text_run(workdir, result, vocab)
    oov_accuracy = result.metrics["test_oov"]["accuracy"] if "test_oov" in result.metrics else None
    return fit_summary(config.experiment, result, config,
                       test_accuracy=result.metrics["test"]["accuracy"], oov_accuracy=oov_accuracy,
                       oov_tokens=oov_tokens, tags=tags, vocab_size=len(vocab),
                       char_features=bool(m.char_features), data=summary)
