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
# Pillow modes of 8 bits per channel, whose conversion to L or RGB Pillow defines.
EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK",
                   "YCbCr", "LAB", "HSV")
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def check_pixel_count(image, path: str) -> None:
    """Raise DataError when ``image`` has more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``.

    Pillow itself only warns between one and two times the limit; a possible
    decompression bomb is a bad example like any other (``data.skip_bad`` skips it).
    """
    from PIL import Image
    limit = Image.MAX_IMAGE_PIXELS
    width, height = image.size
    if limit is not None and width * height > limit:
        raise DataError(f"{path}: {width}x{height} = {width * height} pixels, more than "
                        f"PIL.Image.MAX_IMAGE_PIXELS={limit} (a possible decompression bomb); "
                        "expected a smaller image, or raise the limit if the file is trusted")


def _wide_unit_pixels(image, path: str) -> np.ndarray:
    """A one-channel image of more than 8 bits (``I;16*``, ``I``, ``F``) as float32
    ``[H, W]`` in [0, 1]; other modes are refused naming ``path``."""
    if image.mode in SIXTEEN_BIT_MODES or image.mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise DataError(f"{path}: 32-bit integer pixels (mode I) range over "
                            f"[{values.min()}, {values.max()}]; expected 16-bit values in "
                            "[0, 65535] (scaled by 1/65535); convert the file to 8 or 16 bits")
        return (values / 65535.0).astype(np.float32)
    if image.mode == "F":
        values = np.asarray(image, np.float32)
        if values.size and not (np.isfinite(values).all() and values.min() >= 0
                                and values.max() <= 1):
            raise DataError(f"{path}: float pixels (mode F) range over [{np.nanmin(values)}, "
                            f"{np.nanmax(values)}]{'' if np.isfinite(values).all() else ' with NaN/Inf'}; "
                            "expected finite values in [0, 1]")
        return values
    raise DataError(f"{path}: Pillow pixel mode {image.mode!r} is not supported; expected one "
                    f"of {EIGHT_BIT_MODES + SIXTEEN_BIT_MODES + ('I', 'F')}")


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
        is not an image, or (with ``classes``) a class folder not among them; when an
        example is read, a file that cannot be decoded, a pixel mode that cannot be
        scaled to [0, 1] (``pixels``) or more pixels than Pillow's limit.
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
        """The image at ``path`` as float32 ``[H, W, C]`` in [0, 1] (``pixels``)."""
        from PIL import Image, UnidentifiedImageError  # imported where images are read
        self.opened += 1
        try:
            data = _file_bytes(path)
            try:
                # The listed formats first: Pillow then skips probing every other plugin.
                image = Image.open(io.BytesIO(data), formats=_LIKELY_FORMATS)
            except UnidentifiedImageError:
                image = Image.open(io.BytesIO(data))  # any other format Pillow reads
            with image:
                check_pixel_count(image, path)
                return self.pixels(image, path)
        except DataError:
            raise  # already names the file and what was expected
        except Image.DecompressionBombError as err:  # over twice the limit: refused by open
            raise DataError(f"{path}: {err}; expected an image within Pillow's "
                            "Image.MAX_IMAGE_PIXELS (a possible decompression bomb)") from err
        except (OSError, SyntaxError, ValueError) as err:
            raise DataError(f"{path}: cannot decode the image ({err}); expected a complete "
                            "PNG or JPEG file") from err

    def pixels(self, image, path: str) -> np.ndarray:
        """An opened Pillow image as float32 ``[H, W, C]`` in [0, 1], converted and resized.

        8-bit modes (``EIGHT_BIT_MODES``) go through Pillow's conversion to L or RGB
        and are divided by 255; 16-bit integer modes (``I;16*``, and ``I`` with
        values in [0, 65535], which is how 16-bit PNGs open) by 65535; ``F`` must
        already lie in [0, 1]. Wide modes are resized in float (``F``), keeping
        their precision. Anything else is refused.

        Raises:
          DataError: naming ``path``, for a mode not listed or values out of range.
        """
        if image.mode in EIGHT_BIT_MODES:
            mode = "L" if self.channels == 1 else "RGB"
            # convert() to the same mode and resize() to the same size only copy the
            # pixels (Pillow returns ``copy()``), so skipping them changes no value.
            if image.mode != mode:
                # LAB has no direct conversion to L: through RGB, as Pillow defines it.
                image = image.convert("RGB" if image.mode == "LAB" else mode)
                image = image.convert(mode) if image.mode != mode else image
            pixels = np.asarray(self._resized(image), np.uint8)
            pixels = pixels.astype(np.float32) / 255.0
        else:
            from PIL import Image
            pixels = _wide_unit_pixels(image, path)  # [H, W] float32 in [0, 1]
            if self.image_size is not None:
                pixels = np.asarray(self._resized(Image.fromarray(pixels, mode="F")), np.float32)
                pixels = np.clip(pixels, 0.0, 1.0)  # bilinear stays in range; rounding may not
            if self.channels == 3:
                pixels = np.repeat(pixels[..., None], 3, axis=-1)
        return pixels if pixels.ndim == 3 else pixels[..., None]

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
