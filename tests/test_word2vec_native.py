"""The C++ skip-gram update equals the XLA one up to rounding, repeats, and refuses bad ids."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import check_on_forced_devices, word2vec_toy_batch

from jaxdl.kernels import isa
from jaxdl.kernels import sgns_update as sgns_kernel
from jaxdl.word2vec import sgns as word2vec
from jaxdl.word2vec.sequential import sequential_update

pytestmark = pytest.mark.skipif(
    not sgns_kernel.LIBRARY.available(),
    reason=f"no native word2vec: {sgns_kernel.LIBRARY.unavailable_reason()}")

VOCAB, DIM, CENTRES, WINDOW, NOISE = 500, 40, 96, 6, 5


def _params_and_batch(seed=0, per_pair=False):
    rng = np.random.default_rng(seed)
    params = {name: jnp.asarray(rng.normal(size=(VOCAB, DIM)) * 0.3, jnp.float32)
              for name in ("input", "output")}
    centres = rng.integers(0, VOCAB, CENTRES)
    noise_shape = (CENTRES, WINDOW, NOISE) if per_pair else (CENTRES, NOISE)
    negatives = rng.integers(0, VOCAB, noise_shape)
    centre_axes = (slice(None),) + (None,) * (len(noise_shape) - 1)
    batch = {  # few context words, so rows repeat and the row cap bites
        "centres": jnp.asarray(centres, jnp.int32),
        "contexts": jnp.asarray(rng.integers(0, 40, (CENTRES, WINDOW)), jnp.int32),
        "context_mask": jnp.asarray(rng.random((CENTRES, WINDOW)) < 0.7, jnp.float32),
        "negatives": jnp.asarray(negatives, jnp.int32),
        "negative_mask": jnp.asarray(negatives != centres[centre_axes], jnp.float32),
        "words": jnp.int32(CENTRES),
    }
    return params, batch


def _xla_update(params, batch, lr, monkeypatch):
    monkeypatch.setattr(sgns_kernel, "usable", lambda *args, **kwargs: False)
    return jax.jit(lambda p: word2vec.sgns_update.__wrapped__(p, batch, lr, sg=True,
                                                               row_cap=4.0))(params)


def test_native_update_equals_the_xla_update_up_to_rounding(monkeypatch):
    params, batch = _params_and_batch()
    native, native_stats = jax.jit(
        lambda p: sgns_kernel.sgns_update(p, batch, 0.5, row_cap=4.0))(params)
    want, want_stats = _xla_update(params, batch, 0.5, monkeypatch)
    for name in ("input", "output"):
        moved = np.max(np.abs(np.asarray(want[name]) - np.asarray(params[name])))
        assert moved > 0.1  # the step really changes the tables
        np.testing.assert_allclose(native[name], want[name], rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(native_stats["loss_sum"], want_stats["loss_sum"], rtol=1e-5)
    assert float(native_stats["pairs"]) == float(want_stats["pairs"]) == float(
        batch["context_mask"].sum())


def test_the_update_repeats_bit_for_bit():
    params, batch = _params_and_batch(seed=1)
    step = jax.jit(lambda p: sgns_kernel.sgns_update(p, batch, 0.5, row_cap=4.0)[0])
    first = step(params)
    for _ in range(3):
        again = step(params)
        assert all(np.array_equal(np.asarray(first[k]), np.asarray(again[k])) for k in first)


@pytest.mark.parametrize("sg,per_pair,native", [(True, False, True), (True, True, False),
                                                (False, False, False)])
def test_only_skip_gram_with_shared_negatives_takes_the_kernel(sg, per_pair, native):
    params, batch = _params_and_batch(per_pair=per_pair)
    jaxpr = str(jax.make_jaxpr(lambda p: word2vec.sgns_update.__wrapped__(
        p, batch, 0.1, sg=sg, row_cap=4.0))(params))
    assert ("jaxdl_sgns_update" in jaxpr) == native


def test_an_id_outside_the_vocabulary_is_an_error_naming_it():
    params, batch = _params_and_batch()
    batch = {**batch, "contexts": batch["contexts"].at[3, 2].set(VOCAB)}
    with pytest.raises(Exception, match="a context id is outside the vocabulary"):
        jax.block_until_ready(sgns_kernel.sgns_update(params, batch, 0.1, row_cap=4.0))


def _sequential_checks() -> dict:
    """The sequential kernel (skip-gram and CBOW, 1 and 3 chunks) against its pure-JAX twin,
    and one run's bits on one thread and on two."""
    to_rounding, repeats, threads = True, True, True
    for cbow in (False, True):
        params, batch = word2vec_toy_batch(cbow, sentences=40, seed=4)
        for chunks in (1, 3):
            run = jax.jit(lambda p: sgns_kernel.sgns_sequential(p, batch, 0.3, sg=not cbow, chunks=chunks))
            (got, stats), (again, _) = run(params), run(params)
            want, want_stats = jax.jit(lambda p: sequential_update(
                p, batch, jnp.float32(0.3), sg=not cbow, chunks=chunks))(params)
            to_rounding &= all(np.allclose(got[k], want[k], rtol=2e-5, atol=2e-5) for k in got)
            to_rounding &= bool(np.allclose(stats["loss_sum"], want_stats["loss_sum"], rtol=1e-5))
            repeats &= all(np.array_equal(np.asarray(got[k]), np.asarray(again[k])) for k in got)
        # One run on one thread, and on two (a second thread drawing the noise words
        # ahead): a batch long enough that the second thread starts well before the end.
        params, batch = word2vec_toy_batch(cbow, sentences=3000, seed=4, batch=4096, window=5)
        runs = [jax.jit(lambda p, w=w: sgns_kernel.sgns_sequential(p, batch, 0.3, sg=not cbow, workers=w))(params)
                for w in (1, 2)]
        threads &= all(np.array_equal(np.asarray(runs[0][0][k]), np.asarray(runs[1][0][k])) for k in params)
        threads &= bool(np.array_equal(runs[0][1]["loss_sum"], runs[1][1]["loss_sum"]))
    return {"sequential to its twin": to_rounding, "sequential bits repeat": repeats,
            "sequential bits on 1 or 2 threads": threads}


def build_checks() -> dict:
    """The loaded build against the XLA update (batched) and the pure-JAX twin (sequential)
    to rounding, with bits that repeat."""
    params, batch = _params_and_batch(seed=2)
    step = jax.jit(lambda p: sgns_kernel.sgns_update(p, batch, 0.5, row_cap=4.0))
    (got, stats), (again, _) = step(params), step(params)
    usable, sgns_kernel.usable = sgns_kernel.usable, lambda *args, **kwargs: False
    try:  # the XLA path
        want, want_stats = jax.jit(lambda p: word2vec.sgns_update.__wrapped__(
            p, batch, 0.5, sg=True, row_cap=4.0))(params)
    finally:
        sgns_kernel.usable = usable
    return {"build": sgns_kernel.LIBRARY.build_in_use(),
            "tables to rounding": all(np.allclose(got[k], want[k], rtol=1e-5, atol=2e-6)
                                      for k in got),
            "loss to rounding": bool(np.allclose(stats["loss_sum"], want_stats["loss_sum"],
                                                 rtol=1e-5)),
            "bits repeat": all(np.array_equal(np.asarray(got[k]), np.asarray(again[k]))
                               for k in got),
            **_sequential_checks()}


def _builds_here() -> list[str]:
    if not sgns_kernel.LIBRARY.available():
        return []
    return [b for b in isa.runnable(isa.cpu_features()) if b in sgns_kernel.LIBRARY.builds]


@pytest.mark.parametrize("build", _builds_here())
def test_every_build_this_cpu_runs_matches_xla_and_repeats_its_bits(build, monkeypatch):
    # This process's own build here; each lower one in a child with JAXDL_NATIVE_ISA.
    expected = {"build": build, "tables to rounding": True, "loss to rounding": True,
                "bits repeat": True, "sequential to its twin": True, "sequential bits repeat": True,
                "sequential bits on 1 or 2 threads": True}
    if build == sgns_kernel.LIBRARY.build_in_use():
        assert build_checks() == expected
        return
    monkeypatch.setenv(isa.ENV_VAR, build)
    check_on_forced_devices(
        "import json, sys; sys.path.insert(0, 'tests'); import test_word2vec_native as t; "
        "print(json.dumps(t.build_checks()))", expected, devices=1)
