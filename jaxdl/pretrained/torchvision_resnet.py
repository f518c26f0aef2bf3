"""torchvision ResNet weights (a ``state_dict`` as ``.pth`` or ``.safetensors``) as
the parameters of jaxdl's ``ImageNetResNet`` (``jaxdl.models.resnet``).

Names map as ``conv1 -> stem_conv``, ``bn1 -> stem_bn``,
``layer<s>.<i>.<part> -> blocks/<k>/<part>`` (``k`` counts the blocks of earlier
stages; ``downsample.0``/``downsample.1`` become ``shortcut_conv``/``shortcut_bn``)
and ``fc -> head``, so ``dont_load=('^head/',)`` re-initialises the classifier.
Layouts: convolutions OIHW -> HWIO, the linear layer ``[out, in] -> [in, out]``;
BatchNorm ``weight``/``bias`` become ``scale``/``bias`` parameters and
``running_mean``/``running_var`` the ``mean``/``var`` statistics of the model state.
``num_batches_tracked`` has no counterpart and is dropped.

``.safetensors`` is read with NumPy alone; ``.pth`` needs torch.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import numpy as np

from jaxdl.errors import CheckpointError
from jaxdl.pretrained.safetensors_format import read_safetensors

SUFFIXES = (".pth", ".pt", ".safetensors")
_BN_FIELDS = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}
_BLOCK = re.compile(r"^layer([1-9])\.(\d+)\.(.+)$")
_BLOCK_PARTS = {"conv1": "conv1", "conv2": "conv2", "conv3": "conv3", "bn1": "bn1",
                "bn2": "bn2", "bn3": "bn3", "downsample.0": "shortcut_conv",
                "downsample.1": "shortcut_bn"}


def is_torchvision_file(path: str) -> bool:
    """Whether ``path`` is a file this module reads (by suffix), not a run's workdir."""
    return isinstance(path, str) and path.endswith(SUFFIXES) and os.path.isfile(path)


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A ``state_dict`` file's tensors as float host arrays, by torch name.

    ``.safetensors`` is parsed with NumPy; ``.pth``/``.pt`` is read by
    ``torch.load(weights_only=True)``. A checkpoint that wraps the weights as
    ``{"state_dict": ...}`` or ``{"model": ...}`` is unwrapped, and a ``module.``
    prefix (``DataParallel``) is dropped.

    Raises:
      CheckpointError: torch is missing for a ``.pth`` file, or the file holds
        no mapping of tensors.
    """
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        tensors = read_safetensors(path)
    else:
        try:
            import torch
        except ImportError:
            raise CheckpointError(
                f"{path}: reading a .pth file needs torch, which is not installed; install "
                "it (pip install -e .[torchvision]) or save the state_dict as .safetensors"
            ) from None
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
        if not isinstance(loaded, Mapping) or not all(
                isinstance(v, torch.Tensor) for v in loaded.values()):
            raise CheckpointError(f"{path}: holds a {type(loaded).__name__}, expected a "
                                  "state_dict (a mapping of names to tensors)")
        tensors = {k: v.detach().cpu().float().numpy() if v.is_floating_point()
                   else v.cpu().numpy() for k, v in loaded.items()}
    return {k.removeprefix("module."): v for k, v in tensors.items()}


def _block_offsets(names: list[str], path: str) -> dict[tuple[int, int], int]:
    """``(stage, index) -> k``: the flat block index of each ``layer<s>.<i>``."""
    counts: dict[int, set[int]] = {}
    for name in names:
        match = _BLOCK.match(name)
        if match:
            counts.setdefault(int(match[1]), set()).add(int(match[2]))
    stages = sorted(counts)
    if stages and stages != list(range(1, len(stages) + 1)):
        raise CheckpointError(f"{path}: residual stages {['layer%d' % s for s in stages]}; "
                              "expected layer1, layer2, ... without gaps")
    offsets, k = {}, 0
    for stage in stages:
        if counts[stage] != set(range(len(counts[stage]))):
            raise CheckpointError(f"{path}: blocks of layer{stage} are numbered "
                                  f"{sorted(counts[stage])}; expected 0..n-1")
        for index in sorted(counts[stage]):
            offsets[(stage, index)] = k
            k += 1
    return offsets


def _jaxdl_name(name: str, offsets: dict[tuple[int, int], int]) -> tuple[str, str] | None:
    """``(jaxdl path, kind)`` of a torch name (kind: conv, bn, linear), else None."""
    module, _, field = name.rpartition(".")
    prefix = None
    if module in ("conv1", "bn1", "fc"):
        prefix = {"conv1": "stem_conv", "bn1": "stem_bn", "fc": "head"}[module]
    else:
        match = _BLOCK.match(module)
        if match and match[3] in _BLOCK_PARTS:
            k = offsets[(int(match[1]), int(match[2]))]
            prefix = f"blocks/{k}/{_BLOCK_PARTS[match[3]]}"
    if prefix is None:
        return None
    last = prefix.rpartition("/")[2]
    if last == "head":
        return (f"head/{'kernel' if field == 'weight' else 'bias'}", "linear") \
            if field in ("weight", "bias") else None
    if "conv" in last:
        return (f"{prefix}/kernel", "conv") if field == "weight" else None
    return (f"{prefix}/{_BN_FIELDS[field]}", "bn") if field in _BN_FIELDS else None


def convert_state_dict(state_dict: Mapping[str, np.ndarray],
                       source: str = "state_dict") -> dict[str, np.ndarray]:
    """torchvision ResNet tensors -> ``{jaxdl path: array}`` (params and BatchNorm stats).

    Args:
      state_dict: torch name -> array, e.g. ``"layer1.0.conv1.weight": [64, 64, 3, 3]``.
      source: where it came from, for error messages.
    Returns:
      ``{"stem_conv/kernel": [7, 7, 3, 64], "stem_bn/mean": [64], ...,
      "head/kernel": [512, 1000]}``, float32.
    Raises:
      CheckpointError: names that are no part of a torchvision ResNet, or tensors
        of the wrong rank; the message lists every one.
    """
    offsets = _block_offsets(list(state_dict), source)
    out, unexpected, bad_rank = {}, [], []
    for name in sorted(state_dict):
        if name.endswith("num_batches_tracked"):
            continue
        target = _jaxdl_name(name, offsets)
        if target is None:
            unexpected.append(name)
            continue
        path, kind = target
        array = np.asarray(state_dict[name], dtype=np.float32)
        rank = {"conv": 4, "bn": 1, "linear": 2 if path.endswith("kernel") else 1}[kind]
        if array.ndim != rank:
            bad_rank.append(f"  {name}: shape {array.shape}, expected {rank} dimensions")
            continue
        if kind == "conv":
            array = array.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        elif array.ndim == 2:
            array = array.T  # [out, in] -> [in, out]
        out[path] = np.ascontiguousarray(array)
    if unexpected or bad_rank:
        lines = [f"  {name}: not a torchvision ResNet tensor" for name in unexpected]
        raise CheckpointError(
            f"{source} is not a torchvision ResNet state_dict ({len(lines) + len(bad_rank)} "
            "tensor(s)):\n" + "\n".join(lines + bad_rank))
    return out


def read_torchvision_resnet(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``convert_state_dict(read_state_dict(path))``: a torchvision ResNet file as
    jaxdl paths, ready for ``jaxdl.transfer.load_pretrained``."""
    return convert_state_dict(read_state_dict(path), source=os.fspath(path))
