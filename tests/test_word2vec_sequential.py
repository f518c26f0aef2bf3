"""The sequential ("word2vec.c-faithful") update equals a direct NumPy transcription of word2vec.c.

The transcription below follows word2vec.c's TrainModelThread (negative
sampling, hs = 0) line by line, names included (syn0, syn1neg, neu1, neu1e, l1,
l2, g), fed with the centres, reduced windows, kept words and noise draws of
`make_batch`'s batch and the noise words the update draws (`noise.hashed_noise`;
word2vec.c's random draws, here from (seed, step, example, k)). Also: the
chunked update repeats bit for bit whatever the thread count, and the C++
kernel equals its pure-JAX twin.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import word2vec_toy_batch

from jaxdl.kernels import sgns_update as sgns_kernel
from jaxdl.word2vec.corpus import alias_table, noise_distribution
from jaxdl.word2vec.noise import hashed_noise
from jaxdl.word2vec.sequential import batch_negatives, chunk_bounds, sequential_update
from jaxdl.word2vec.sgns import sgns_update

MAX_EXP = 6.0
WINDOW, NEGATIVE, DIM, BATCH = 3, 4, 12, 32


def word2vec_c(syn0, syn1neg, batch, alpha, cbow):
    """word2vec.c's update of one batch, float32, sigmoid exact inside ±MAX_EXP (its table's range)."""
    syn0, syn1neg = syn0.copy(), syn1neg.copy()
    centres, contexts = batch["centres"], batch["contexts"]
    mask, noise, noise_ok = batch["context_mask"] > 0, batch["negatives"], batch["negative_mask"] > 0
    alpha = np.float32(alpha)

    def gradient(f, label):
        if f > MAX_EXP:
            return (label - 1) * alpha
        if f < -MAX_EXP:
            return (label - 0) * alpha
        return (label - np.float32(1 / (1 + np.exp(-f)))) * alpha

    for b, word in enumerate(centres):
        if cbow:
            window = [last_word for last_word, m in zip(contexts[b], mask[b]) if m]
            if not window:
                continue
            neu1 = np.sum([syn0[w] for w in window], axis=0, dtype=np.float32) / np.float32(len(window))
            neu1e = np.zeros(DIM, np.float32)
            for d in range(NEGATIVE + 1):
                if d == 0:
                    target, label = word, 1
                else:
                    if not noise_ok[b, d - 1]:  # target == word
                        continue
                    target, label = noise[b, d - 1], 0
                l2 = target
                f = np.dot(neu1, syn1neg[l2])
                g = gradient(f, label)
                neu1e += g * syn1neg[l2]
                syn1neg[l2] += g * neu1
            for last_word in window:
                syn0[last_word] += neu1e
            continue
        for a in range(2 * WINDOW):  # left to right through the reduced window
            if not mask[b, a]:
                continue
            l1 = contexts[b, a]
            neu1e = np.zeros(DIM, np.float32)
            for d in range(NEGATIVE + 1):
                if d == 0:
                    target, label = word, 1
                else:
                    if not noise_ok[b, a, d - 1]:
                        continue
                    target, label = noise[b, a, d - 1], 0
                l2 = target
                f = np.dot(syn0[l1], syn1neg[l2])
                g = gradient(f, label)
                neu1e += g * syn1neg[l2]
                syn1neg[l2] += g * syn0[l1]
            syn0[l1] += neu1e
    return syn0, syn1neg


def _toy_batch(cbow, sentences=12, seed=0):
    return word2vec_toy_batch(cbow, sentences, seed, batch=BATCH, window=WINDOW, negative=NEGATIVE, dim=DIM)


def _paths():
    paths = [pytest.param(False, id="pure-jax")]
    if sgns_kernel.LIBRARY.available():
        paths.append(pytest.param(True, id="c++"))
    return paths


@pytest.mark.parametrize("native", _paths())
@pytest.mark.parametrize("cbow", [False, True], ids=["skip-gram", "cbow"])
def test_sequential_update_is_word2vec_c(monkeypatch, cbow, native):
    if not native:
        monkeypatch.setattr(sgns_kernel, "sequential_usable", lambda params: False)
    params, batch = _toy_batch(cbow)
    negatives, negative_mask = batch_negatives(batch, sg=not cbow)
    host = {k: np.asarray(v) for k, v in batch.items()}
    host.update(negatives=np.asarray(negatives), negative_mask=np.asarray(negative_mask))
    assert host["negative_mask"].min() == 0  # some draws equal their centre and are skipped
    # Rows repeat inside the batch (12 words), so a batched update would differ.
    assert len(set(host["centres"][host["context_mask"].sum(1) > 0].tolist())) < host["context_mask"].any(1).sum()
    want_in, want_out = word2vec_c(np.asarray(params["input"]), np.asarray(params["output"]), host, 0.3, cbow)
    new, stats = jax.jit(lambda p: sgns_update.__wrapped__(p, batch, 0.3, sg=not cbow, update="sequential"))(params)
    np.testing.assert_allclose(np.asarray(new["input"]), want_in, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(np.asarray(new["output"]), want_out, rtol=2e-5, atol=2e-5)
    assert np.abs(want_in - np.asarray(params["input"])).max() > 0.1  # the update really moved the tables
    examples = host["context_mask"].any(1).sum() if cbow else host["context_mask"].sum()
    assert float(stats["pairs"]) == examples


def test_sequential_update_refuses_a_batch_without_noise_keys():
    params, batch = _toy_batch(cbow=False)
    batch = {k: v for k, v in batch.items() if not k.startswith("noise_")}
    with pytest.raises(ValueError, match=r"sequential update: the batch has no noise_keys .*hashed_noise=True"):
        sgns_update(params, batch, 0.1, sg=True, update="sequential")


def test_hashed_noise_follows_count_to_the_0_75():
    counts = np.array([4000, 2000, 900, 300, 100, 50, 20, 5])
    accept, alias = alias_table(noise_distribution(counts))
    keys = jnp.asarray([1, 0x9E3779B9, 12345], jnp.uint32)
    draws = np.asarray(hashed_noise(keys, jnp.asarray(accept), jnp.asarray(alias), 40_000))
    assert draws.shape == (40_000, 3) and draws.dtype == np.int32
    for k in range(3):  # 40,000 draws per key: a few parts in a thousand of sampling error
        frequency = np.bincount(draws[:, k], minlength=len(counts)) / len(draws)
        np.testing.assert_allclose(frequency, noise_distribution(counts), atol=0.006)
    assert not np.array_equal(draws[:, 0], draws[:, 1])


needs_kernel = pytest.mark.skipif(not sgns_kernel.LIBRARY.available(), reason="no native word2vec")


@needs_kernel
@pytest.mark.parametrize("cbow", [False, True], ids=["skip-gram", "cbow"])
def test_chunked_kernel_repeats_whatever_the_worker_count(cbow):
    params, batch = _toy_batch(cbow, sentences=40, seed=1)
    run = jax.jit(lambda p, workers: sgns_kernel.sgns_sequential(p, batch, 0.3, sg=not cbow, chunks=4,
                                                                 workers=workers), static_argnums=1)
    first, stats = run(params, 1)
    for workers in (2, 3, 4, 0):
        again, again_stats = run(params, workers)
        for name in ("input", "output"):
            assert np.asarray(again[name]).tobytes() == np.asarray(first[name]).tobytes(), (name, workers)
        assert np.asarray(again_stats["loss_sum"]).tobytes() == np.asarray(stats["loss_sum"]).tobytes()
    one_chunk, _ = jax.jit(lambda p: sgns_kernel.sgns_sequential(p, batch, 0.3, sg=not cbow))(params)
    assert not np.array_equal(np.asarray(one_chunk["output"]), np.asarray(first["output"]))  # chunks matter


def test_chunk_bounds_share_the_examples_evenly_wherever_the_masks_put_them():
    mask = jnp.asarray([[1, 1], [1, 1], [1, 1], [0, 0], [0, 0], [0, 0]], jnp.float32)  # padding at the end
    batch = {"context_mask": mask}
    assert chunk_bounds(batch, 2, sg=True).tolist() == [0, 2, 6]  # halving the centres, [0, 3, 6], would give the runs 6 and 0 examples
    assert chunk_bounds(batch, 3, sg=True).tolist() == [0, 1, 2, 6]
    assert chunk_bounds(batch, 2, sg=False).tolist() == [0, 2, 6]  # CBOW: one example per centre with a context
    assert chunk_bounds({"context_mask": jnp.zeros((4, 2))}, 2, sg=True).tolist() == [0, 0, 4]


@needs_kernel
@pytest.mark.parametrize("cbow", [False, True], ids=["skip-gram", "cbow"])
def test_first_chunk_trains_the_tables_in_place_and_later_chunks_add_their_changes(cbow):
    # Two chunks, bit for bit: the first chunk's run alone (one chunk over the batch
    # with the second chunk's centres masked, training the tables in place), plus
    # the second chunk's change (its run alone from the start tables, less them).
    params, batch = _toy_batch(cbow, sentences=40, seed=4)
    bound = int(chunk_bounds(batch, 2, sg=not cbow)[1])
    assert 0 < bound < BATCH
    first = dict(batch, context_mask=batch["context_mask"].at[bound:].set(0.0))
    second = dict(batch, context_mask=batch["context_mask"].at[:bound].set(0.0))
    one_run = jax.jit(lambda p, b: sgns_kernel.sgns_sequential(p, b, 0.3, sg=not cbow))
    (first_run, _), (second_run, _) = one_run(params, first), one_run(params, second)
    two, _ = jax.jit(lambda p: sgns_kernel.sgns_sequential(p, batch, 0.3, sg=not cbow, chunks=2, workers=2))(params)
    for name in ("input", "output"):
        start = np.asarray(params[name])
        expected = np.asarray(first_run[name]) + (np.asarray(second_run[name]) - start)
        assert np.asarray(two[name]).tobytes() == expected.tobytes(), name
        assert not np.array_equal(np.asarray(second_run[name]), start)  # the second chunk trained


@needs_kernel
def test_kernel_calls_from_several_threads_at_once_keep_their_bits():
    # The runs of a call go to XLA's thread pool and train copies the kernel keeps
    # between calls; calls made at the same moment (XLA may run two) each take a
    # set of their own and each gets its own bits.
    import concurrent.futures

    cases = [_toy_batch(cbow, sentences=40, seed=seed) for cbow in (False, True) for seed in (1, 2)]
    run = jax.jit(lambda p, b, sg: sgns_kernel.sgns_sequential(p, b, 0.3, sg=sg, chunks=4, workers=3),
                  static_argnums=2)
    sgs = [True, True, False, False]
    alone = [np.asarray(run(p, b, sg)[0]["output"]) for (p, b), sg in zip(cases, sgs)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            together = list(pool.map(lambda i: np.asarray(run(*cases[i], sgs[i])[0]["output"]), range(4)))
            for i in range(4):
                assert together[i].tobytes() == alone[i].tobytes(), i


@needs_kernel
@pytest.mark.parametrize("cbow", [False, True], ids=["skip-gram", "cbow"])
def test_lock_free_runs_share_the_tables_in_place(cbow):
    params, batch = _toy_batch(cbow, sentences=40, seed=3)
    run = jax.jit(lambda p, workers, lock_free: sgns_kernel.sgns_sequential(
        p, batch, 0.3, sg=not cbow, chunks=4, workers=workers, lock_free=lock_free), static_argnums=(1, 2))
    one_chunk, one_stats = jax.jit(lambda p: sgns_kernel.sgns_sequential(p, batch, 0.3, sg=not cbow))(params)
    # On one thread the four runs train the shared tables one after another:
    # that is one run over the whole batch, bit for bit.
    serial, serial_stats = run(params, 1, True)
    merged, _ = run(params, 1, False)
    for name in ("input", "output"):
        assert np.asarray(serial[name]).tobytes() == np.asarray(one_chunk[name]).tobytes(), name
        assert not np.array_equal(np.asarray(merged[name]), np.asarray(one_chunk[name]))
    # (the loss is summed per run, then over runs: another order of the same terms)
    np.testing.assert_allclose(float(serial_stats["loss_sum"]), float(one_stats["loss_sum"]), rtol=1e-6)
    # On four threads the runs overlap in time; every example is still trained once.
    shared, shared_stats = run(params, 4, True)
    assert float(shared_stats["pairs"]) == float(one_stats["pairs"]) > 0
    assert np.isfinite(np.asarray(shared["input"])).all()
    assert np.abs(np.asarray(shared["output"]) - np.asarray(params["output"])).max() > 0.1
    np.testing.assert_allclose(float(shared_stats["loss_sum"]), float(one_stats["loss_sum"]), rtol=0.1)


@needs_kernel
@pytest.mark.parametrize("chunks", [1, 3])
@pytest.mark.parametrize("cbow", [False, True], ids=["skip-gram", "cbow"])
def test_kernel_equals_its_pure_jax_twin(cbow, chunks):
    params, batch = _toy_batch(cbow, sentences=40, seed=2)
    native, native_stats = jax.jit(lambda p: sgns_kernel.sgns_sequential(
        p, batch, 0.3, sg=not cbow, chunks=chunks, workers=2))(params)
    twin, twin_stats = jax.jit(lambda p: sequential_update(p, batch, jnp.float32(0.3), sg=not cbow,
                                                           chunks=chunks))(params)
    for name in ("input", "output"):
        assert np.abs(np.asarray(twin[name]) - np.asarray(params[name])).max() > 0.1
        np.testing.assert_allclose(np.asarray(native[name]), np.asarray(twin[name]), rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(float(native_stats["loss_sum"]), float(twin_stats["loss_sum"]), rtol=1e-5)
    assert float(native_stats["pairs"]) == float(twin_stats["pairs"]) > 0


@needs_kernel
def test_kernel_refuses_too_many_chunks_and_bad_aliases():
    params, batch = _toy_batch(cbow=False)
    with pytest.raises(Exception, match=r"chunks=33: expected 1 to B=32"):
        jax.block_until_ready(sgns_kernel.sgns_sequential(params, batch, 0.1, sg=True, chunks=33))
    bad = {**batch, "noise_alias": batch["noise_alias"].at[0].set(10_000)}
    with pytest.raises(Exception, match="a noise alias is outside the vocabulary"):
        jax.block_until_ready(sgns_kernel.sgns_sequential(params, bad, 0.1, sg=True))
