"""scikit-learn's bundled datasets with a deterministic split and fair scaling.

``load_sklearn("digits")`` returns ``{"train": {"x", "y"}, "test": {"x", "y"}}``
as float32 features and int32 (classification) or float32 (regression) targets.
The split is stratified for classification and fixed by ``seed``; standardisation
is fitted on the training split only, so nothing leaks from the test split.

``load_digits_images`` gives the same bundled digits as 8x8 images (NHWC in [0, 1]).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxdl.errors import DataError

# name -> (the loader in sklearn.datasets, task). scikit-learn is imported on first
# load: it is among the slowest imports, and every ``python -m jaxdl.run`` would pay
# for it before its first line, whatever its data.
_LOADERS = {
    "diabetes": ("load_diabetes", "regression"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "digits": ("load_digits", "classification"),
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset."""

    name: str
    task: str  # "regression" or "classification"
    num_features: int
    num_classes: int  # 0 for regression


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale every array by the training split's per-feature mean and std.

    Constant features (std 0) are centred and left unscaled.
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def load_sklearn(
    name: str, *, test_fraction: float = 0.25, seed: int = 0, scale: bool = True
) -> tuple[dict[str, dict[str, np.ndarray]], DatasetInfo]:
    """Load a bundled scikit-learn dataset, split and (optionally) standardised.

    Args:
      name: one of diabetes, breast_cancer, digits, iris, wine.
      test_fraction: share of examples held out for the test split.
      seed: fixes the split.
      scale: standardise features with the training split's statistics.
    Returns:
      ``(splits, info)``: ``splits["train"]["x"]`` is float32 ``[N, D]``,
      ``splits["train"]["y"]`` int32 ``[N]`` or float32 ``[N]``.
    """
    if name not in _LOADERS:
        raise DataError(f"unknown sklearn dataset '{name}'; expected one of {sorted(_LOADERS)}")
    from sklearn import datasets as sk_datasets
    from sklearn.model_selection import train_test_split
    loader, task = _LOADERS[name]
    bunch = getattr(sk_datasets, loader)()
    x = np.asarray(bunch.data, np.float64)
    y = np.asarray(bunch.target)
    stratify = y if task == "classification" else None
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=stratify)
    if scale:
        x_tr, x_te = standardize(x_tr, x_te)
    y_dtype = np.int32 if task == "classification" else np.float32
    splits = {
        "train": {"x": x_tr.astype(np.float32), "y": y_tr.astype(y_dtype)},
        "test": {"x": x_te.astype(np.float32), "y": y_te.astype(y_dtype)},
    }
    num_classes = int(len(np.unique(y))) if task == "classification" else 0
    return splits, DatasetInfo(name, task, x.shape[1], num_classes)


# The digits' pixels are counts of set pixels in 4x4 blocks of a 32x32 bitmap: 0..16.
_DIGITS_MAX_VALUE = 16.0


def load_digits_images(
    *, test_fraction: float = 0.2, seed: int = 0
) -> dict[str, dict[str, np.ndarray]]:
    """scikit-learn's 1,797 8x8 handwritten digits as images, split deterministically.

    Args:
      test_fraction: share held out for "test", in (0, 1).
      seed: `random_state` of the stratified `train_test_split`.

    Returns:
      `{"train": {"x": float32 [N, 8, 8, 1] in [0, 1], "y": int32 [N]},
      "test": {...}}`; with the defaults 1,437 train and 360 test images.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"load_digits_images test_fraction={test_fraction}; expected 0 < value < 1")
    from sklearn import datasets as sk_datasets
    from sklearn.model_selection import train_test_split
    bunch = sk_datasets.load_digits()
    images = (np.asarray(bunch.images, np.float32) / _DIGITS_MAX_VALUE)[..., None]
    labels = np.asarray(bunch.target, np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return {"train": {"x": x_train, "y": y_train}, "test": {"x": x_test, "y": y_test}}
