"""Image folders in the ImageNet layout: ``root/<class>/<file>.{png,jpg,jpeg}``.

Classes are the sub-folder names sorted, labelled 0, 1, …; files are sorted
within a class. Only the file list is held; each image is opened and decoded
(Pillow) when its example is read, so memory does not grow with the folder.
"""

from __future__ import annotations

import io
import os
from typing import Sequence

import numpy as np
from absl import logging

from jaxdl.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_LIKELY_FORMATS = ("PNG", "JPEG")
RESIZE_MODES = ("stretch", "crop")  # crop: shorter side to size, then the centre


def _file_bytes(path: str) -> bytes:
    """All bytes of the file ``path``, read with as few system calls as the OS allows
    (a buffered ``open().read()``, or Pillow's many small reads, cost more per image)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = [os.read(fd, os.fstat(fd).st_size + 1)]
        while chunks[-1]:  # the file grew, or the OS returned less than asked
            chunks.append(os.read(fd, 1 << 20))
    finally:
        os.close(fd)
    return b"".join(chunks)


class ImageFolder:
    """Random-access examples ``{"x": float32 [H, W, C] in [0, 1], "y": int32 []}``.

    Args:
      root: the split's folder, holding one sub-folder per class.
      image_size: output side ``(H = W)``; None keeps each file's size (all must agree).
      channels: 1 (grayscale) or 3 (RGB); files are converted.
      resize: ``"stretch"`` (resize to the square) or ``"crop"`` (shorter side to
        ``image_size``, then the centre square).
      classes: the class names to label by (a test split passes the train split's);
        None: the sub-folders of ``root``.
    Raises:
      DataError: a missing root, no class folders, an empty class folder, a file that
        is not an image, or (with ``classes``) a class folder not among them.
    """

    def __init__(self, root: str, *, image_size: int | None = None, channels: int = 3,
                 resize: str = "stretch", classes: Sequence[str] | None = None):
        if channels not in (1, 3):
            raise ConfigError(f"config.data.channels={channels}; expected 1 or 3")
        if resize not in RESIZE_MODES:
            raise ConfigError(f"config.data.resize={resize!r}; expected one of {RESIZE_MODES}")
        if not os.path.isdir(root):
            raise DataError(f"image folder {root} does not exist; expected "
                            "root/<class>/<image>.png|jpg|jpeg")
        found = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        if not found:
            raise DataError(f"image folder {root} has no class sub-folders; expected "
                            "root/<class>/<image>.png|jpg|jpeg")
        self.classes = list(classes) if classes is not None else found
        unknown = [c for c in found if c not in self.classes]
        if unknown:
            raise DataError(f"class folder {os.path.join(root, unknown[0])} is not a class of "
                            f"the training split; expected one of {self.classes}")
        self.root, self.image_size, self.channels, self.resize = root, image_size, channels, resize
        self.paths, labels = [], []
        for label, name in enumerate(self.classes):
            folder = os.path.join(root, name)
            if not os.path.isdir(folder):
                continue  # a split may lack a training class
            files = sorted(os.listdir(folder))
            if not files:
                raise DataError(f"class folder {folder} is empty; expected image files "
                                f"({', '.join(IMAGE_EXTENSIONS)})")
            for file in files:
                path = os.path.join(folder, file)
                if not file.lower().endswith(IMAGE_EXTENSIONS):
                    raise DataError(f"{path} is not an image file; expected one of "
                                    f"{IMAGE_EXTENSIONS} in {folder}")
                self.paths.append(path)
                labels.append(label)
        self.labels = np.asarray(labels, np.int32)
        self.opened = 0  # files opened by this object (in this process)

    def __len__(self) -> int:
        return len(self.paths)

    def decode(self, path: str) -> np.ndarray:
        """The image at ``path`` as float32 ``[H, W, C]`` in [0, 1]."""
        self.opened += 1
        try:
            pixels = self._pixels(_file_bytes(path))
        except (OSError, SyntaxError, ValueError) as err:
            raise DataError(f"{path}: cannot decode the image ({err}); expected a complete "
                            "PNG or JPEG file") from err
        if pixels.ndim == 2:
            pixels = pixels[..., None]
        return pixels.astype(np.float32) / 255.0

    def _pixels(self, data: bytes) -> np.ndarray:
        """``data`` (an encoded file) decoded, converted and resized: uint8 ``[H, W(, C)]``."""
        from PIL import Image, UnidentifiedImageError  # imported where images are read
        mode = "L" if self.channels == 1 else "RGB"
        try:
            # The listed formats first: Pillow then skips probing every other plugin.
            image = Image.open(io.BytesIO(data), formats=_LIKELY_FORMATS)
        except UnidentifiedImageError:
            image = Image.open(io.BytesIO(data))  # any other format Pillow reads
        with image:
            # convert() to the same mode and resize() to the same size only copy the
            # pixels (Pillow returns ``copy()``), so skipping them changes no value.
            if image.mode != mode:
                image = image.convert(mode)
            image = self._resized(image)
            return np.asarray(image, np.uint8)

    def _resized(self, image):
        if self.image_size is None:
            return image
        size = self.image_size
        if image.size == (size, size):
            return image  # already square at the size: either mode's resize is the identity
        if self.resize == "crop":
            width, height = image.size
            scale = size / min(width, height)
            image = image.resize((max(size, round(width * scale)),
                                  max(size, round(height * scale))), resample=2)
            left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
            return image.crop((left, top, left + size, top + size))
        return image.resize((size, size), resample=2)  # 2: bilinear

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"x": self.decode(self.paths[index]), "y": self.labels[index]}

    def load(self, index: int, *, skip_bad: bool = False) -> dict[str, np.ndarray] | None:
        """Example ``index``, or None (logged) when it cannot be decoded and ``skip_bad``."""
        try:
            return self[index]
        except DataError as err:
            if not skip_bad:
                raise
            logging.warning("skipping %s", err)
            return None

    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of the examples (from the first image when not resized)."""
        if self.image_size is not None:
            return (self.image_size, self.image_size, self.channels)
        return tuple(self.decode(self.paths[0]).shape)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every example decoded into memory: ``{"x": [N, H, W, C], "y": [N]}``."""
        return {"x": np.stack([self.decode(p) for p in self.paths]), "y": self.labels.copy()}


class HostAugment:
    """Random crop (zero padding) and horizontal flip of one example on the host.

    Called as ``augment(example, rng)`` by ``StepLoader`` with
    ``rng = default_rng([seed, step, index])``.
    """

    def __init__(self, crop_padding: int = 0, flip: bool = False):
        self.crop_padding, self.flip = crop_padding, flip

    def __call__(self, example: dict, rng: np.random.Generator) -> dict:
        x = example["x"]
        if self.crop_padding:
            p = self.crop_padding
            padded = np.pad(x, ((p, p), (p, p), (0, 0)))
            top, left = rng.integers(0, 2 * p + 1, size=2)
            x = padded[top:top + x.shape[0], left:left + x.shape[1]]
        if self.flip and rng.random() < 0.5:
            x = x[:, ::-1]
        return {**example, "x": np.ascontiguousarray(x)}
