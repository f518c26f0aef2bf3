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
