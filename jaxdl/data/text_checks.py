"""What a text problem needs before a model is built from it: checked, and named.

The label or tag set of a model comes from its training data only: a label seen
only in a test file is refused (naming it and the file), never added to the
model's output, so the test file cannot change the model's shape. Training data
of fewer than two labels is refused before training: a model over one label
learns nothing (and scikit-learn's baselines refuse it with a traceback).
``Vocab.build(..., source=file)`` refuses a vocabulary of only special tokens
and ``Word2VecCorpus.check_trainable`` a corpus too small for word2vec, each
naming the file.
"""

from __future__ import annotations

from typing import Iterable

from jaxdl.errors import DataError

EMBEDDED = "the embedded data"  # how a split without a file is named


def label_set(train_labels: Iterable[str], test_labels: Iterable[str], *, train_source: str,
              test_source: str, kind: str = "label") -> list[str]:
    """The sorted labels (or tags) of the training data: the model's outputs.

    Args:
      train_labels, test_labels: every label of each split (any iterable).
      train_source, test_source: the files (named in errors; "" for embedded data).
      kind: "label" or "tag", as the error should say.
    Returns:
      ``sorted(set(train_labels))``; class ``i`` is its element ``i``.
    Raises:
      DataError: fewer than 2 training labels, or a test label not among them.
    """
    classes = sorted(set(train_labels))
    if len(classes) < 2:
        raise DataError(f"{train_source or EMBEDDED}: {len(classes)} distinct {kind}(s) in the "
                        f"training data {classes}; expected at least 2 (a model over one {kind} "
                        "learns nothing)")
    known = set(classes)
    unseen = sorted({label for label in test_labels if label not in known})
    if unseen:
        raise DataError(f"{test_source or EMBEDDED}: {kind}(s) {unseen[:5]}"
                        f"{f' and {len(unseen) - 5} more' if len(unseen) > 5 else ''} never occur "
                        f"in the training data {train_source or EMBEDDED}; expected only its "
                        f"{len(classes)} {kind}s {classes[:10]} (a model's {kind}s come from "
                        "training data: drop those examples or add some to training)")
    return classes
