"""Device meshes and sharding rules: the same code on one device or many.

A mesh has axes ``('data', 'model')``. Batches are split over ``data``; the
training state is replicated (the default) or sharded by a rule. One device is a
1×1 mesh, so single-device runs take exactly the same path.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxdl.errors import ConfigError


def make_mesh(data: int = 1, model: int = 1) -> Mesh:
    """A ``('data', 'model')`` mesh over the first ``data × model`` devices.

    Args:
      data: devices along the batch axis (-1: all devices / ``model``).
      model: devices along the model axis.
    """
    devices = jax.devices()
    if data == -1:
        data = len(devices) // model
    if data < 1 or model < 1 or data * model > len(devices):
        raise ConfigError(f"config.mesh.data={data}, config.mesh.model={model} need "
                          f"{data * model} devices; expected at most {len(devices)} "
                          f"(jax.devices() has {len(devices)})")
    grid = np.asarray(devices[: data * model]).reshape(data, model)
    return Mesh(grid, ("data", "model"))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
    """Split axis ``batch_axis`` over the mesh's ``data`` axis."""
    spec = [None] * batch_axis + ["data"]
    return NamedSharding(mesh, P(*spec))


def check_batch_divides(batch_size: int, mesh: Mesh, where: str) -> None:
    """Raise a ConfigError unless ``batch_size`` splits evenly over ``data``."""
    n = mesh.shape["data"]
    if batch_size % n:
        raise ConfigError(f"{where}={batch_size} does not divide over the mesh's data axis "
                          f"of {n} devices; expected a multiple of {n} (e.g. "
                          f"{max(n, batch_size - batch_size % n)})")


PARAM_SHARDINGS = ("replicated", "fsdp")

# Leaves smaller than this stay replicated under FSDP: sharding a bias or a
# scalar saves nothing and costs an all-gather per use.
FSDP_MIN_ELEMENTS = 1024


def fsdp_spec(shape: tuple[int, ...], data_size: int,
              min_elements: int = FSDP_MIN_ELEMENTS) -> P:
    """The FSDP partition of one array: its largest dimension divisible by ``data_size``.

    Args:
      shape: the array's shape, e.g. ``(784, 256)``.
      data_size: devices on the mesh's ``data`` axis.
      min_elements: arrays with fewer elements are replicated.
    Returns:
      ``P()`` (replicated) or a spec with ``'data'`` on the chosen dimension, e.g.
      ``P('data', None)`` for ``(784, 256)`` over 8 devices (ties: the first).
    """
    size = int(np.prod(shape)) if shape else 1
    if data_size <= 1 or size < min_elements:
        return P()
    candidates = [d for d, n in enumerate(shape) if n % data_size == 0]
    if not candidates:
        return P()
    axis = max(candidates, key=lambda d: (shape[d], -d))
    spec = [None] * len(shape)
    spec[axis] = "data"
    return P(*spec)


def state_shardings(tree, mesh: Mesh, rule: str = "replicated"):
    """A sharding for every array leaf of ``tree`` (a ``TrainState`` or any pytree).

    ``"replicated"`` puts every leaf whole on every device. ``"fsdp"`` shards each
    leaf by ``fsdp_spec``. The rule depends only on a leaf's shape, so the
    optimizer's moments (shaped like their parameter) and the EMA follow their
    parameter's sharding, and step counters stay replicated.

    Args:
      tree: a pytree of arrays (or ``jax.ShapeDtypeStruct``s).
      mesh: the ``('data', 'model')`` mesh.
      rule: one of ``PARAM_SHARDINGS`` (``config.mesh.param_sharding``).
    Returns:
      A pytree of ``NamedSharding`` with the structure of ``tree``.
    Raises:
      ConfigError: for an unknown rule.
    """
    if rule not in PARAM_SHARDINGS:
        raise ConfigError(f"config.mesh.param_sharding={rule!r}; expected one of "
                          f"{PARAM_SHARDINGS}")
    data_size = mesh.shape["data"]

    def sharding_of(leaf):
        if rule == "replicated":
            return NamedSharding(mesh, P())
        return NamedSharding(mesh, fsdp_spec(tuple(np.shape(leaf)), data_size))

    return jax.tree.map(sharding_of, tree)


def put_step_inputs(inputs: np.ndarray, sharding: NamedSharding) -> jax.Array | np.ndarray:
    """Make the host's ``[k, B, ...]`` step inputs ready for a loop jitted with
    ``in_shardings``.

    In one process the numpy array is returned as it is: jit places it by its
    ``in_shardings`` in its fast C++ path, far cheaper than ``jax.device_put``.
    Every process computes the same global inputs (they are a pure function of
    seed and step), but in a multi-process run each one transfers only the
    slices its own devices hold: the callback is asked for those slices alone.

    Args:
      inputs: the global step inputs, e.g. int32 batch indices ``[k, B]``.
      sharding: usually ``batch_sharding(mesh, batch_axis=1)``.
    Returns:
      ``inputs`` itself (one process) or a global ``jax.Array`` laid out by ``sharding``.
    """
    if jax.process_count() == 1 or not isinstance(inputs, np.ndarray):
        return inputs  # one process, or a streamed source's batches placed by their source
    return jax.make_array_from_callback(inputs.shape, sharding, lambda index: inputs[index])
