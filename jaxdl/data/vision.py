"""Image datasets for the vision family, all as `{"train": {"x", "y"}, "test": {...}}`
with float32 NHWC images in [0, 1] and int32 labels.

- `load_digits_images`: scikit-learn's bundled 8x8 digits (no download; the default).
- `load_mnist`: MNIST / Fashion-MNIST from IDX files (`jaxdl.data.idx`).
- `load_cifar`: CIFAR-10 / CIFAR-100 python pickles (`jaxdl.data.cifar`).
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from jaxdl.data.cifar import load_cifar
from jaxdl.data.idx import load_mnist, read_idx
from jaxdl.errors import DataError

__all__ = ["load_digits_images", "load_mnist", "load_cifar", "read_idx"]

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
    bunch = load_digits()
    images = (np.asarray(bunch.images, np.float32) / _DIGITS_MAX_VALUE)[..., None]
    labels = np.asarray(bunch.target, np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return {"train": {"x": x_train, "y": y_train}, "test": {"x": x_test, "y": y_test}}
