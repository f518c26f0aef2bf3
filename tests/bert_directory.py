"""A tiny randomly initialised BERT checkpoint in Hugging Face's directory format.

``config.json`` with the keys ``transformers.BertConfig.save_pretrained`` writes,
``model.safetensors`` with ``BertModel``'s tensor names and torch layouts (Linear
weights ``[out, in]``, the pooler included, as ``save_pretrained`` stores it) and a
``tokenizer.json`` built with the ``tokenizers`` package the way BERT's is (BERT
normaliser, BERT pre-tokeniser, WordPiece, ``[CLS] ... [SEP]`` template). Written
from the format, not from jaxdl's reader, so a loader bug cannot hide behind it.
"""

from __future__ import annotations

import json

import numpy as np

from jaxdl.pretrained.safetensors_format import write_safetensors

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "a", "movie", "film", "was", "is", "good", "bad", "great", "awful", "plot",
         "actor", "and", "but", "not", "very", "fun", "dull", "!", ".", ",", "?", "'", "s",
         "##s", "##ing", "##ed", "##ly", "play", "act", "love", "hate", "cafe", "über",
         "it", "i", "this", "that", "story", "end"]
TINY = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 32, "max_position_embeddings": 40, "type_vocab_size": 2}


def bert_config_json(vocab_size: int, **overrides) -> dict:
    """``config.json`` of a BertModel as ``save_pretrained`` writes it (tiny sizes)."""
    config = {
        "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "model_type": "bert",
        "pad_token_id": 0, "position_embedding_type": "absolute", "torch_dtype": "float32",
        "transformers_version": "4.44.2", "use_cache": True, "vocab_size": vocab_size, **TINY}
    config.update(overrides)
    return config


def bert_tensors(config: dict, *, seed: int = 0, prefix: str = "") -> dict[str, np.ndarray]:
    """Random ``BertModel`` tensors for ``config``, by their real names and layouts."""
    rng = np.random.default_rng(seed)
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    shapes = {"embeddings.word_embeddings.weight": (config["vocab_size"], hidden),
              "embeddings.position_embeddings.weight": (config["max_position_embeddings"],
                                                        hidden),
              "embeddings.token_type_embeddings.weight": (config["type_vocab_size"], hidden),
              "embeddings.LayerNorm.weight": (hidden,), "embeddings.LayerNorm.bias": (hidden,),
              "pooler.dense.weight": (hidden, hidden), "pooler.dense.bias": (hidden,)}
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (hidden, hidden), (hidden,)
        shapes[p + "intermediate.dense.weight"] = (inter, hidden)
        shapes[p + "intermediate.dense.bias"] = (inter,)
        shapes[p + "output.dense.weight"], shapes[p + "output.dense.bias"] = (hidden, inter), \
            (hidden,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + norm + ".weight"], shapes[p + norm + ".bias"] = (hidden,), (hidden,)
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith("LayerNorm.weight"):  # near 1, so a wrong map changes the output
            tensors[prefix + name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            tensors[prefix + name] = rng.normal(0, 0.3, shape).astype(np.float32)
    return tensors


def bert_tokenizer_json(path, vocab: list[str], *, lowercase: bool = True) -> None:
    """BERT's tokenizer pipeline over ``vocab``, saved as ``tokenizer.json``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    ids = {token: i for i, token in enumerate(vocab)}
    tokenizer = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.save(str(path))


def write_tiny_bert(directory, *, seed: int = 0, prefix: str = "", tensors=None,
                    **config_overrides) -> dict:
    """Write ``config.json``, ``model.safetensors``, ``tokenizer.json`` (+ vocab.txt,
    tokenizer_config.json) into ``directory``; returns the config written.

    ``tensors`` replaces the random tensors (to write a broken checkpoint)."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = SPECIALS + WORDS
    config = bert_config_json(len(vocab), **config_overrides)
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    if tensors is None:
        tensors = bert_tensors(config, seed=seed, prefix=prefix)
    write_safetensors(directory / "model.safetensors", tensors, metadata={"format": "pt"})
    bert_tokenizer_json(directory / "tokenizer.json", vocab)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": True, "pad_token": "[PAD]", "cls_token": "[CLS]",
         "sep_token": "[SEP]", "unk_token": "[UNK]", "mask_token": "[MASK]",
         "tokenizer_class": "BertTokenizer", "model_max_length": 512}))
    return config
