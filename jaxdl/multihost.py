"""Multi-process runs: JAX's own ``jax.distributed`` with gloo collectives on CPU.

``python -m jaxdl.run ... --coordinator_address=HOST:PORT --num_processes=N
--process_id=I`` calls ``initialize`` before anything touches a device. After it,
``jax.devices()`` lists every process's devices, so ``make_mesh`` builds one
global mesh and ``fit`` trains one data-parallel run: every process computes the
same step indices and transfers only its own share of each batch; checkpoints
are written by orbax cooperatively; only process 0 writes logs and summaries,
and only process 0 takes the workdir's lock (``jaxdl.workdir_lock``), which
the other processes of the run share.

Without arguments, JAX's usual environment (e.g. a cluster scheduler's variables)
is used by ``jax.distributed.initialize`` itself.
"""

from __future__ import annotations

import jax

from jaxdl.errors import ConfigError
from jaxdl.train.compilation_cache import disable_for_multiprocess_cpu


def initialize(coordinator_address: str | None, num_processes: int | None,
               process_id: int | None) -> None:
    """Join a multi-process JAX run.

    Args:
      coordinator_address: ``"host:port"`` of process 0 (e.g. ``"127.0.0.1:12345"``);
        None lets JAX read it from the environment.
      num_processes: total number of processes, or None (environment).
      process_id: this process's index in ``[0, num_processes)``, or None.
    Raises:
      ConfigError: on an inconsistent process id or a malformed address.
    """
    if num_processes is not None and num_processes < 1:
        raise ConfigError(f"--num_processes={num_processes}; expected a positive integer")
    if process_id is not None and num_processes is not None and not (
            0 <= process_id < num_processes):
        raise ConfigError(f"--process_id={process_id}; expected 0 <= process_id < "
                          f"--num_processes={num_processes}")
    if coordinator_address is not None and ":" not in coordinator_address:
        raise ConfigError(f"--coordinator_address={coordinator_address!r}; expected "
                          "'host:port', e.g. '127.0.0.1:12345'")
    # CPU collectives across processes need gloo (the default cannot cross
    # processes). The option only concerns the CPU backend, so it is harmless on a
    # GPU host, and it must be set before any backend exists.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
    disable_for_multiprocess_cpu()
