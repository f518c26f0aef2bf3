import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import r2_score

from jaxdl import losses, metrics


def test_masked_losses_ignore_padding():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(5, 4)), jnp.float32)
    labels = jnp.asarray([0, 3, 1, 2, 2])
    padded_logits = jnp.concatenate([logits, 100 * jnp.ones((3, 4))])
    padded_labels = jnp.concatenate([labels, jnp.zeros(3, jnp.int32)])
    mask = jnp.asarray([1.0] * 5 + [0.0] * 3)
    full = losses.softmax_cross_entropy(logits, labels)
    masked = losses.softmax_cross_entropy(padded_logits, padded_labels, mask)
    assert float(masked) == pytest.approx(float(full), rel=1e-6)


def test_label_smoothing_changes_loss_and_zero_is_plain():
    logits = jnp.asarray([[2.0, 0.0, -1.0]])
    labels = jnp.asarray([0])
    plain = losses.softmax_cross_entropy(logits, labels)
    smooth = losses.softmax_cross_entropy(logits, labels, label_smoothing=0.1)
    assert float(smooth) > float(plain)
    assert float(losses.softmax_cross_entropy(logits, labels, label_smoothing=0.0)) == float(plain)


def test_binary_hinge_and_perceptron_losses():
    scores = jnp.asarray([2.0, -0.5, 0.5])
    labels = jnp.asarray([1, 0, 0])
    assert float(losses.hinge(scores, labels)) == pytest.approx((0 + 0.5 + 1.5) / 3)
    assert float(losses.perceptron_criterion(scores, labels)) == pytest.approx(0.5 / 3)


def test_streaming_r2_matches_sklearn_over_padded_batches():
    rng = np.random.default_rng(1)
    y = rng.normal(size=37).astype(np.float32)
    pred = (y + rng.normal(scale=0.3, size=37)).astype(np.float32)
    totals = None
    for start in range(0, 37, 16):  # batches of 16, the last padded with zeros
        p = np.zeros(16, np.float32)
        t = np.zeros(16, np.float32)
        m = np.zeros(16, np.float32)
        n = min(16, 37 - start)
        p[:n], t[:n], m[:n] = pred[start:start + n], y[start:start + n], 1.0
        stats = metrics.batch_stats({"r2": metrics.r2, "mse": metrics.mse}, jnp.asarray(p),
                                    jnp.asarray(t), jnp.asarray(m))
        totals = stats if totals is None else metrics.add_stats(totals, stats)
    values = metrics.compute_metrics({"r2": metrics.r2, "mse": metrics.mse}, totals)
    assert values["r2"] == pytest.approx(r2_score(y, pred), abs=1e-5)
    assert values["mse"] == pytest.approx(float(np.mean((y - pred) ** 2)), rel=1e-5)


def test_accuracy_with_example_mask_over_column_targets():
    pred = jnp.asarray([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    stats = metrics.accuracy.stats(pred, jnp.asarray([1, 1, 0]), jnp.asarray([1.0, 1.0, 0.0]))
    assert metrics.accuracy.compute({k: float(v) for k, v in stats.items()}) == 0.5
