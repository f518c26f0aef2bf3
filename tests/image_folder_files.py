"""Tiny image folders in the ImageNet layout, written with Pillow, for the streaming tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("cat", "dog", "eel")


def write_image_folder(root: Path, *, per_class: int, size: int = 8, mode: str = "RGB",
                       seed: int = 0, classes=CLASSES, ext: str = "png") -> Path:
    """``root/<class>/<i>.<ext>``: noise with a class-specific bright band; returns root."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (size, size, channels), dtype=np.uint8)
            pixels[label * 2:label * 2 + 2] = 255
            image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
            image.save(folder / f"{i:03d}.{ext}")
    return root


def write_split_folders(root: Path, *, train_per_class: int = 8, test_per_class: int = 3,
                        size: int = 8, mode: str = "RGB") -> Path:
    """``root/train/<class>/…`` and ``root/test/<class>/…``; returns root."""
    write_image_folder(root / "train", per_class=train_per_class, size=size, mode=mode, seed=0)
    write_image_folder(root / "test", per_class=test_per_class, size=size, mode=mode, seed=1)
    return root
