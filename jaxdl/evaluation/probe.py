"""Evaluating fixed embeddings: a linear probe and nearest-neighbour retrieval."""

from __future__ import annotations

import numpy as np

from jaxdl.errors import DataError


def linear_probe_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *, C: float = 1.0
) -> float:
    """Test accuracy of a logistic regression trained on standardized fixed features.

    Deterministic: lbfgs solver, no random state involved.

    Args:
        train_x: float `[n, D]`; train_y: int `[n]`.
        test_x: float `[m, D]`; test_y: int `[m]`.
        C: inverse L2 regularisation strength.

    Returns:
        accuracy on the test split, in [0, 1].
    """
    for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if np.ndim(x) != 2 or len(x) != len(y):
            raise DataError(f"linear_probe_accuracy: {name}_x shape {np.shape(x)} and {name}_y length {len(y)} "
                            "do not match; expected [n, D] features and n labels")
    # scikit-learn is imported here, on first use: it is a slow import that a run
    # without a probe should not pay for.
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    scaler = StandardScaler().fit(train_x)
    classifier = LogisticRegression(C=C, max_iter=2000)
    classifier.fit(scaler.transform(train_x), train_y)
    return float(np.mean(classifier.predict(scaler.transform(test_x)) == np.asarray(test_y)))


def retrieval_accuracy(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of items whose nearest *other* item by cosine has the same label.

    Args:
        embeddings: float `[n, D]` (zero rows have cosine 0 to everything).
        labels: `[n]`.

    Returns:
        accuracy in [0, 1].
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if embeddings.ndim != 2 or len(embeddings) != len(labels) or len(labels) < 2:
        raise DataError(f"retrieval_accuracy: embeddings {embeddings.shape} and {len(labels)} labels; "
                        "expected [n, D] with n ≥ 2 and n labels")
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = embeddings / np.where(norms == 0, 1, norms)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.mean(labels[np.argmax(similarity, axis=1)] == labels))
