"""Sequence datasets and tasks: exact arrays, the unigram formula, masks through the Task."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdl.data.sequence_sets import (classification_dataset, language_model_dataset,
                                      out_of_vocabulary_mask, split_in_blocks, tagging_dataset,
                                      token_stream, unigram_perplexity, with_target_mask)
from jaxdl.data.text import Vocab
from jaxdl.errors import DataError
from jaxdl.models.sequence import LSTMTagger
from jaxdl.train.predict import predict
from jaxdl.train.task import tagging_task, word_dropout


def test_language_model_chunks_predict_every_later_token_once():
    vocab = Vocab.build([["a", "b", "c"], ["d"]])  # ids: a=4, b=5, c=6, d=7 (ties sorted)
    stream = token_stream([["a", "b", "c"], ["d"]], vocab)
    np.testing.assert_array_equal(stream, [3, 4, 5, 6, 3, 7, 3])  # </s> first and after each sentence
    ds = language_model_dataset(stream, seq_len=4, name="train")
    np.testing.assert_array_equal(ds.arrays["tokens"], [[3, 4, 5, 6], [3, 7, 0, 0]])
    np.testing.assert_array_equal(ds.arrays["y"], [[4, 5, 6, 3], [7, 3, 0, 0]])
    np.testing.assert_array_equal(ds.arrays["target_mask"], [[1, 1, 1, 1], [1, 1, 0, 0]])


def test_unigram_perplexity_is_add_one_over_the_vocabulary_without_pad():
    vocab_size = 6  # ids 1..5 in the support (1 = <unk>), <pad> = 0 excluded
    train = language_model_dataset(np.array([3, 4, 4, 4, 5]), seq_len=2, name="train")  # targets 4,4,4,5
    test = language_model_dataset(np.array([3, 4, 1]), seq_len=2, name="test")  # targets 4, <unk>
    # counts + 1 over ids 1..5: [1, 1, 1, 4, 2] -> total 9; p(4) = 4/9, p(<unk>) = 1/9
    expected = math.exp(-(math.log(4 / 9) + math.log(1 / 9)) / 2)
    assert unigram_perplexity(train, test, vocab_size) == pytest.approx(expected, rel=1e-12)


def test_tagging_arrays_oov_mask_and_unknown_tags():
    train = [[("The", "DET"), ("dog", "NOUN")]]
    vocab = Vocab.build([["the", "dog"]])
    chars = Vocab.build(list(w) for s in train for w, _ in s)
    test = tagging_dataset([[("The", "DET"), ("cat", "NOUN"), ("ran", "VERB")]], vocab,
                           ["DET", "NOUN", "VERB"], max_len=4, name="test", char_vocab=chars, max_word_len=3)
    np.testing.assert_array_equal(test.arrays["token_mask"], [[1, 1, 1, 0]])
    np.testing.assert_array_equal(test.arrays["y"], [[0, 1, 2, 0]])
    assert test.arrays["chars"].shape == (1, 4, 3)
    np.testing.assert_array_equal(test.arrays["char_mask"][0, :, :].sum(-1), [3, 3, 3, 0])
    oov = out_of_vocabulary_mask(test, vocab)
    np.testing.assert_array_equal(oov, [[0, 1, 1, 0]])
    np.testing.assert_array_equal(with_target_mask(test, oov, name="oov").arrays["target_mask"], oov)
    with pytest.raises(DataError, match=r"split 'test': labels \['VERB'\] are not among the 2 training"):
        tagging_dataset([[("ran", "VERB")]], vocab, ["DET", "NOUN"], max_len=2, name="test")


def test_classification_rows_and_truncation():
    vocab = Vocab.build([["good", "film"]])
    ds = classification_dataset([["good", "film", "indeed"], []], ["pos", "neg"], vocab, ["neg", "pos"],
                                max_len=2, name="train")
    np.testing.assert_array_equal(ds.arrays["tokens"], [[5, 4], [1, 0]])  # film=4 < good=5; empty -> <unk>
    np.testing.assert_array_equal(ds.arrays["y"], [1, 0])


def test_block_split_is_deterministic_and_partitions_the_corpus():
    sentences = [[str(i)] for i in range(1000)]
    train, test = split_in_blocks(sentences, test_fraction=0.1, seed=3)
    assert (train, test) == split_in_blocks(sentences, test_fraction=0.1, seed=3)
    assert len(test) == 100 and sorted(train + test, key=lambda s: int(s[0])) == sentences
    starts = sorted(int(s[0]) for s in test if int(s[0]) % 20 == 0)
    assert len(starts) == 5  # five whole blocks of 20


def test_task_loss_ignores_padded_positions_and_padded_rows():
    model = LSTMTagger(10, 3, 4, 5, char_vocab_size=None, rngs=nnx.Rngs(0))
    task = tagging_task()
    rng = np.random.default_rng(0)
    tokens = rng.integers(4, 10, (3, 6)).astype(np.int32)
    y = rng.integers(0, 3, (3, 6)).astype(np.int32)
    token_mask = np.array([[1, 1, 1, 0, 0, 0], [1] * 6, [1, 1, 0, 0, 0, 0]], np.float32)
    batch = {"tokens": tokens, "token_mask": token_mask, "y": y, "target_mask": token_mask,
             "mask": np.array([1, 0, 1], np.float32)}  # row 1 is an eval padding row
    noisy = dict(batch, tokens=np.where(token_mask > 0, tokens, 9), y=np.where(token_mask > 0, y, 2))
    noisy["tokens"][1] = 7  # the padding row's content must not count either

    def loss(batch):
        return task.loss(task.predict(model, batch), batch["y"], task.weights(batch))

    alone = [{k: v[i:i + 1, :3 if i == 0 else 2] if v.ndim == 2 else v[i:i + 1] for k, v in batch.items()}
             for i in (0, 2)]
    manual = (3 * loss(alone[0]) + 2 * loss(alone[1])) / 5
    np.testing.assert_allclose(loss(batch), manual, rtol=1e-6)
    np.testing.assert_allclose(loss(noisy), loss(batch), rtol=1e-6)


def test_word_dropout_touches_only_real_tokens_and_is_a_function_of_the_key():
    preprocess = word_dropout(0.5, unk_id=1)
    batch = {"tokens": jnp.full((4, 50), 7, jnp.int32),
             "token_mask": jnp.concatenate([jnp.ones((4, 25)), jnp.zeros((4, 25))], 1)}
    out = preprocess(batch, jax.random.key(0))["tokens"]
    assert bool(jnp.all(out[:, 25:] == 7))
    assert 20 < int(jnp.sum(out[:, :25] == 1)) < 80  # about half of 100
    np.testing.assert_array_equal(out, preprocess(batch, jax.random.key(0))["tokens"])


def test_predict_pads_the_last_batch_without_changing_outputs():
    model = LSTMTagger(10, 3, 4, 5, rngs=nnx.Rngs(1))
    vocab = Vocab(["<pad>", "<unk>", "<s>", "</s>"] + list("abcdef"))
    ds = tagging_dataset([[("a", "X"), ("b", "X")], [("c", "X")], [("d", "X"), ("e", "X"), ("f", "X")]],
                         vocab, ["X"], max_len=3, name="test", lower=False)
    full = predict(model, ds, batch_size=3)
    in_twos = predict(model, ds, batch_size=2)  # second call padded with an empty row
    np.testing.assert_allclose(in_twos, full, rtol=1e-6, atol=1e-6)
    assert full.shape == (3, 3, 3)
