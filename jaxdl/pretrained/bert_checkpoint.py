"""A Hugging Face BERT checkpoint directory as a ``jaxdl.models.TransformerEncoder``.

The directory is the one ``transformers`` writes and the model hub serves:
``config.json`` (``BertConfig``) and ``model.safetensors`` (read with NumPy alone,
``jaxdl.pretrained.safetensors_format``). ``pytorch_model.bin`` is not read: it is
a pickle that needs torch; convert it once with ``transformers``
(``model.save_pretrained(dir, safe_serialization=True)``).

Tensor names map, with or without the ``bert.`` prefix that task models add::

  embeddings.word_embeddings.weight        -> embeddings/word/embedding
  embeddings.position_embeddings.weight    -> embeddings/position/embedding
  embeddings.token_type_embeddings.weight  -> embeddings/token_type/embedding
  embeddings.LayerNorm.{weight,bias}       -> embeddings/norm/{scale,bias}
  encoder.layer.i.attention.self.{query,key,value}.{weight,bias}
                                           -> layers/i/attention/{query,key,value}/{kernel,bias}
  encoder.layer.i.attention.output.dense   -> layers/i/attention/output
  encoder.layer.i.attention.output.LayerNorm -> layers/i/attention_norm
  encoder.layer.i.intermediate.dense       -> layers/i/intermediate
  encoder.layer.i.output.dense             -> layers/i/output
  encoder.layer.i.output.LayerNorm         -> layers/i/output_norm

Linear weights ``[out, in]`` are transposed to kernels ``[in, out]``; LayerNorm
``gamma``/``beta`` (older TensorFlow conversions) read as ``weight``/``bias``.
Ignored, because the encoder has no counterpart: the pooler (``pooler.*``), the
pretraining heads (``cls.*``: masked-LM and next-sentence) and the
``embeddings.position_ids`` buffer that older checkpoints store.
"""

from __future__ import annotations

import json
import os
import re

import jax
import numpy as np
from flax import nnx

from jaxdl.errors import ConfigError
from jaxdl.models.transformer_encoder import TransformerEncoder, TransformerEncoderConfig
from jaxdl.optim import param_path
from jaxdl.pretrained.safetensors_format import read_safetensors

WEIGHTS_FILE = "model.safetensors"
IGNORED = re.compile(r"^(pooler\.|cls\.|embeddings\.position_ids$)")
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias|gamma|beta)$")
_LAYER_PARTS = {
    "attention.self.query": "attention/query", "attention.self.key": "attention/key",
    "attention.self.value": "attention/value", "attention.output.dense": "attention/output",
    "attention.output.LayerNorm": "attention_norm", "intermediate.dense": "intermediate",
    "output.dense": "output", "output.LayerNorm": "output_norm",
}
_EMBEDDINGS = {"embeddings.word_embeddings.weight": "embeddings/word/embedding",
               "embeddings.position_embeddings.weight": "embeddings/position/embedding",
               "embeddings.token_type_embeddings.weight": "embeddings/token_type/embedding"}
# config.json key -> (TransformerEncoderConfig field, default when the key is absent or None).
_CONFIG_KEYS = {
    "vocab_size": ("vocab_size", None), "hidden_size": ("hidden_size", None),
    "num_hidden_layers": ("num_layers", None), "num_attention_heads": ("num_heads", None),
    "intermediate_size": ("intermediate_size", None),
    "max_position_embeddings": ("max_positions", None),
    "type_vocab_size": ("type_vocab_size", 2), "layer_norm_eps": ("layer_norm_eps", 1e-12),
    "hidden_dropout_prob": ("dropout", 0.1),
    "attention_probs_dropout_prob": ("attention_dropout", 0.1),
    "initializer_range": ("initializer_range", 0.02),
}
# Settings under which BertModel computes something this encoder does not.
_REQUIRED = {"hidden_act": ("gelu",), "position_embedding_type": ("absolute",),
             "model_type": ("bert",), "is_decoder": (False,), "add_cross_attention": (False,)}


def bert_config(directory: str | os.PathLike) -> TransformerEncoderConfig:
    """The encoder sizes of a checkpoint directory's ``config.json``.

    Raises:
      ConfigError: the file is missing or not a JSON object, a size key is missing
        or not a positive integer, or a setting this encoder does not compute
        (``hidden_act`` other than ``"gelu"``, ``position_embedding_type`` other than
        ``"absolute"``, a ``model_type`` other than ``"bert"``, a decoder); the
        message names the file, the key and the value.
    """
    path = os.path.join(os.fspath(directory), "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; expected a Hugging Face BERT directory "
                          "with config.json and model.safetensors") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not JSON ({error})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: holds a {type(raw).__name__}; expected a JSON object")
    for key, allowed in _REQUIRED.items():
        value = raw.get(key, allowed[0])
        if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
            raise ConfigError(f"{path}: {key}={value!r} is not supported; expected "
                              f"{' or '.join(repr(a) for a in allowed)} (jaxdl's "
                              "TransformerEncoder is BERT's post-LayerNorm encoder)")
    fields = {}
    for key, (field, default) in _CONFIG_KEYS.items():
        value = raw.get(key)
        if value is None:
            if default is None:
                raise ConfigError(f"{path}: key {key!r} is missing; expected a positive "
                                  "integer")
            value = default
        is_int = isinstance(TransformerEncoderConfig.__dataclass_fields__[field].default,
                            int) or default is None
        if is_int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{path}: {key}={value!r}; expected a positive integer")
        if not is_int and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{path}: {key}={value!r}; expected a number")
        fields[field] = value
    try:
        return TransformerEncoderConfig(**fields)
    except ConfigError as error:
        # Name config.json's keys, not the dataclass fields they became.
        message = str(error).replace("TransformerEncoderConfig.", "")
        for key, (field, _) in _CONFIG_KEYS.items():
            message = re.sub(rf"\b{field}\b", key, message)
        raise ConfigError(f"{path}: {message}") from None


def bert_tensor_path(name: str) -> tuple[str, bool] | None:
    """``(jaxdl path, transpose)`` of a BERT tensor name without ``bert.``, else None."""
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name], False
    norm = {"weight": "scale", "gamma": "scale", "bias": "bias", "beta": "bias"}
    if name.startswith("embeddings.LayerNorm."):
        field = name.rpartition(".")[2]
        return (f"embeddings/norm/{norm[field]}", False) if field in norm else None
    match = _LAYER.match(name)
    if not match or match[2] not in _LAYER_PARTS:
        return None
    part, field = _LAYER_PARTS[match[2]], match[3]
    if part.endswith("_norm"):
        return f"layers/{match[1]}/{part}/{norm[field]}", False
    if field not in ("weight", "bias"):
        return None
    return (f"layers/{match[1]}/{part}/{'kernel' if field == 'weight' else 'bias'}",
            field == "weight")


def _model_shapes(model: nnx.Module) -> dict[str, tuple[int, ...]]:
    _, params = nnx.split(model, nnx.Param)
    return {param_path(p): tuple(leaf.shape)
            for p, leaf in jax.tree_util.tree_flatten_with_path(params.to_pure_dict())[0]}


def convert_bert_tensors(tensors: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]],
                         source: str) -> dict[str, np.ndarray]:
    """BERT tensors -> ``{jaxdl path: float32 array}``, checked against ``expected``.

    Args:
      tensors: BERT name (``bert.`` prefix optional) -> array, torch layouts.
      expected: jaxdl path -> shape of the model to load into.
      source: the file, for error messages.
    Raises:
      ConfigError: listing every missing tensor (with the jaxdl path it would fill),
        every unexpected one, and every shape mismatch with both shapes in the
        checkpoint's layout.
    """
    converted, unexpected, mismatched, mismatched_paths = {}, [], [], set()
    for name in sorted(tensors):
        short = name.removeprefix("bert.")
        if IGNORED.match(short):
            continue
        target = bert_tensor_path(short)
        if target is None or target[0] not in expected or target[0] in converted:
            unexpected.append(name)
            continue
        path, transpose = target
        array = np.asarray(tensors[name], dtype=np.float32)
        want = expected[path][::-1] if transpose else expected[path]
        if array.shape != want:
            mismatched.append(f"  {name}: shape {list(array.shape)} in the checkpoint, "
                              f"expected {list(want)} from config.json")
            mismatched_paths.add(path)
            continue
        converted[path] = np.ascontiguousarray(array.T if transpose else array)
    missing = sorted(set(expected) - set(converted) - mismatched_paths)
    if missing or unexpected or mismatched:
        lines = ([f"  missing: {_bert_name(p)} (for {p})" for p in missing]
                 + [f"  unexpected: {name}" for name in unexpected] + mismatched)
        raise ConfigError(
            f"{source} does not fit the BERT encoder its config.json describes "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} "
            "of another shape):\n" + "\n".join(lines))
    return converted


def _bert_name(path: str) -> str:
    """The BERT tensor name (without ``bert.``) that fills jaxdl ``path``."""
    for name, target in _EMBEDDINGS.items():
        if target == path:
            return name
    parts = path.split("/")
    if parts[0] == "embeddings":
        return f"embeddings.LayerNorm.{'weight' if parts[-1] == 'scale' else 'bias'}"
    part = "/".join(parts[2:-1])
    torch_part = {v: k for k, v in _LAYER_PARTS.items()}[part]
    field = "weight" if parts[-1] in ("kernel", "scale") else "bias"
    return f"encoder.layer.{parts[1]}.{torch_part}.{field}"


def load_bert(directory: str | os.PathLike, *, seed: int = 0) -> TransformerEncoder:
    """A ``TransformerEncoder`` holding a Hugging Face BERT directory's weights.

    Every encoder tensor of ``model.safetensors`` is mapped by name (see the module
    docstring; ``pooler.*``, ``cls.*`` and ``embeddings.position_ids`` are ignored)
    and the model's dropout rates are those of ``config.json``.

    Args:
      directory: holds ``config.json`` and ``model.safetensors``.
      seed: the ``nnx.Rngs`` seed the model is built with; every parameter is then
        replaced by the checkpoint's, so it does not change the result.
    Returns:
      The encoder, float32, ready for ``encoder(input_ids, attention_mask)``.
    Raises:
      ConfigError: a bad ``config.json`` (``bert_config``); no ``model.safetensors``
        (saying so when only ``pytorch_model.bin`` is there); tensors that do not fit
        (``convert_bert_tensors``).
    """
    directory = os.fspath(directory)
    config = bert_config(directory)
    weights = os.path.join(directory, WEIGHTS_FILE)
    if not os.path.isfile(weights):
        bin_file = os.path.join(directory, "pytorch_model.bin")
        hint = (f"; {bin_file} is there, but jaxdl reads only safetensors: convert it once "
                "with transformers (BertModel.from_pretrained(dir).save_pretrained(dir, "
                "safe_serialization=True))" if os.path.isfile(bin_file) else "")
        raise ConfigError(f"{weights}: no such file; expected the checkpoint's weights as "
                          f"safetensors{hint}")
    # Built abstractly: random initialisation would compile an initialiser per shape
    # (seconds) only for every value to be replaced.
    abstract = nnx.eval_shape(lambda: TransformerEncoder(config, rngs=nnx.Rngs(seed)))
    converted = convert_bert_tensors(read_safetensors(weights), _model_shapes(abstract),
                                     weights)
    graphdef, params = nnx.split(abstract, nnx.Param)
    loaded = jax.tree_util.tree_map_with_path(
        lambda p, leaf: jax.numpy.asarray(converted[param_path(p)], dtype=leaf.dtype),
        params.to_pure_dict())
    nnx.replace_by_pure_dict(params, loaded)
    return nnx.merge(graphdef, params)
