"""The sequential ("word2vec.c-faithful") update equals a direct NumPy transcription of word2vec.c.

The transcription below follows word2vec.c's TrainModelThread (negative
sampling, hs = 0) line by line, names included (syn0, syn1neg, neu1, neu1e, l1,
l2, g), fed with the centres, reduced windows, kept words and noise draws of
`make_batch`'s batch (word2vec.c's random draws, here from (seed, step)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.kernels import sgns_update as sgns_kernel
from jaxdl.word2vec.corpus import Word2VecCorpus
from jaxdl.word2vec.sgns import make_batch, sgns_update

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


def _toy_batch(cbow):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    sentences = [list(rng.choice(words, size=rng.integers(2, 9))) for _ in range(12)]
    corpus = Word2VecCorpus.from_sentences(sentences, min_count=1)
    arrays = corpus.device_arrays(batch_centres=BATCH, sample=1e-2)
    batch = make_batch(arrays, jax.random.key(5), 1, batch_centres=BATCH, window=WINDOW, negative=NEGATIVE,
                       sg=not cbow, shared_negatives=cbow)
    vocab = len(corpus.words)
    params = {"input": jnp.asarray(rng.normal(size=(vocab, DIM)), jnp.float32),
              "output": jnp.asarray(rng.normal(size=(vocab, DIM)), jnp.float32)}
    return params, batch


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
    host = {k: np.asarray(v) for k, v in batch.items()}
    # Rows repeat inside the batch (12 words), so a batched update would differ.
    assert len(set(host["centres"][host["context_mask"].sum(1) > 0].tolist())) < host["context_mask"].any(1).sum()
    want_in, want_out = word2vec_c(np.asarray(params["input"]), np.asarray(params["output"]), host, 0.3, cbow)
    new, stats = jax.jit(lambda p: sgns_update.__wrapped__(p, batch, 0.3, sg=not cbow, update="sequential"))(params)
    np.testing.assert_allclose(np.asarray(new["input"]), want_in, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(np.asarray(new["output"]), want_out, rtol=2e-5, atol=2e-5)
    assert np.abs(want_in - np.asarray(params["input"])).max() > 0.1  # the update really moved the tables
    examples = host["context_mask"].any(1).sum() if cbow else host["context_mask"].sum()
    assert float(stats["pairs"]) == examples


def test_sequential_update_refuses_shared_negatives_in_skip_gram():
    params, batch = _toy_batch(cbow=True)  # negatives [B, K]
    with pytest.raises(ValueError, match=r"sequential update: negatives of shape \(32, 4\) for sg=True"):
        sgns_update(params, batch, 0.1, sg=True, update="sequential")
