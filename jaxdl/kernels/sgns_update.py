"""`word2vec.sgns_update` as C++ kernels: batched skip-gram with window-shared negatives, and sequential.

XLA:CPU runs the update as ~30 small gathers, batched dot products and scatters
one after another; `sgns_update.cc` does the same arithmetic per centre on every
core and adds the updates in a fixed order (repeatable bits). Used for float32
tables on CPU when the library builds (`kernels/build.py`); otherwise, and for
CBOW or per-pair negatives, the XLA path. Results equal it up to float rounding.
The sequential kernel applies a batch's examples one after another, as
word2vec.c's training thread does, drawing the noise words itself from the
batch's `noise_keys` (word2vec/noise.py), in `chunks` independent runs on up to
`workers` threads (its pure-JAX twin is `word2vec.sequential.sequential_update`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.kernels.build import NativeLibrary

TARGET = "jaxdl_sgns_update"
SEQUENTIAL_TARGET = "jaxdl_sgns_sequential"
LIBRARY = NativeLibrary("sgns_update.cc", {TARGET: "JaxdlSgnsUpdate", SEQUENTIAL_TARGET: "JaxdlSgnsSequential"},
                        builds=("avx512", "avx2", "portable"))


def usable(params, batch, *, sg: bool) -> bool:
    """Skip-gram, negatives shared by the window (`[B, K]`), float32, on CPU."""
    return (sg and batch["negatives"].ndim == 2 and jax.default_backend() == "cpu"
            and params["input"].dtype == params["output"].dtype == jnp.float32
            and LIBRARY.available())


def sequential_usable(params) -> bool:
    """float32 tables on CPU and the library builds (skip-gram and CBOW alike)."""
    return (jax.default_backend() == "cpu" and params["input"].dtype == params["output"].dtype == jnp.float32
            and LIBRARY.available())


def _call(params, batch, lr, row_cap):
    inputs, outputs = params["input"], params["output"]
    scalar = jax.ShapeDtypeStruct((), jnp.float32)
    call = jax.ffi.ffi_call(
        TARGET, (jax.ShapeDtypeStruct(inputs.shape, inputs.dtype),
                 jax.ShapeDtypeStruct(outputs.shape, outputs.dtype), scalar, scalar),
        input_output_aliases={0: 0, 1: 1}, vmap_method="sequential")
    new_inputs, new_outputs, loss_sum, pairs = call(
        inputs, outputs, batch["centres"].astype(jnp.int32), batch["contexts"].astype(jnp.int32),
        batch["context_mask"].astype(jnp.float32), batch["negatives"].astype(jnp.int32),
        batch["negative_mask"].astype(jnp.float32), jnp.asarray(lr, jnp.float32), row_cap=np.float32(row_cap))
    return {"input": new_inputs, "output": new_outputs}, {"loss_sum": loss_sum, "pairs": pairs}


def sgns_sequential(params, batch, lr, *, sg: bool, chunks: int = 1, workers: int = 0, lock_free: bool = False):
    """word2vec.c's update, example by example in batch order: `(new params, {"loss_sum", "pairs"})`.

    Args:
        params: {"input", "output": float32 `[V, D]`}, updated in place when donated.
        batch: `make_batch(..., hashed_noise=True)`: centres, contexts, context_mask,
            noise_keys uint32 `[K]`, noise_accept / noise_alias `[V]`.
        lr: learning rate.
        sg: skip-gram (K noise words per pair), else CBOW (K per centre).
        chunks: contiguous runs of centres trained independently from the batch-start
            tables, the first in place, the later ones on copies whose changes are
            added in run order (see `sgns_update.cc`).
        workers: threads for the runs, from XLA's CPU thread pool (the threads XLA
            already runs, so none competes with them for the cores); 0 = one per
            available CPU. At most `chunks` and the pool's size, except that one run
            (chunks = 1) with 2 or more takes a second thread, which draws the noise
            words ahead of it. The result does not depend on it unless `lock_free`.
        lock_free: the runs train the shared tables in place at the same time,
            unlocked (Hogwild, as word2vec.c's and gensim's threads): no private
            copies or merge, so faster, and the bits depend on thread timing.
    """
    LIBRARY.require()
    inputs, outputs = params["input"], params["output"]
    scalar = jax.ShapeDtypeStruct((), jnp.float32)
    call = jax.ffi.ffi_call(
        SEQUENTIAL_TARGET, (jax.ShapeDtypeStruct(inputs.shape, inputs.dtype),
                            jax.ShapeDtypeStruct(outputs.shape, outputs.dtype), scalar, scalar),
        input_output_aliases={0: 0, 1: 1}, vmap_method="sequential")
    new_inputs, new_outputs, loss_sum, pairs = call(
        inputs, outputs, batch["centres"].astype(jnp.int32), batch["contexts"].astype(jnp.int32),
        batch["context_mask"].astype(jnp.float32), batch["noise_keys"].astype(jnp.uint32),
        batch["noise_accept"].astype(jnp.float32), batch["noise_alias"].astype(jnp.int32),
        jnp.asarray(lr, jnp.float32), skip_gram=np.int64(sg), chunks=np.int64(chunks),
        workers=np.int64(workers), lock_free=np.int64(lock_free))
    return {"input": new_inputs, "output": new_outputs}, {"loss_sum": loss_sum, "pairs": pairs}


def sgns_update(params, batch, lr, *, row_cap: float):
    """`(new params, {"loss_sum", "pairs"})`, as `word2vec.sgns_update` returns them.

    The tables are updated in place when XLA can donate them.
    """
    LIBRARY.require()
    return _call(params, batch, lr, row_cap)
