"""Every Pillow pixel mode is scaled to [0, 1] correctly or refused naming the file;
a decompression bomb is a bad example like any other (issue 28, class F)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from PIL import Image

from jaxdl.data.formats.image_folder import ImageFolder
from jaxdl.data.streaming import StreamingSource
from jaxdl.errors import DataError

# Gray levels every mode holds exactly (the web palette of mode P has them too).
LEVELS = np.array([[0, 51, 102], [153, 204, 255]], np.uint8)
SIXTEEN = LEVELS.astype(np.uint16) * 257  # the same levels at 16 bits


def gray_in_mode(mode: str) -> Image.Image:
    """``LEVELS`` as an image of ``mode``: 16-bit and float modes hold them at their
    own depth, 8-bit modes via Pillow's conversion from L."""
    if mode in ("I;16", "I;16L", "I;16N", "I;16B"):
        image = Image.new(mode, (3, 2))
        image.putdata(SIXTEEN.ravel().tolist())
        return image
    if mode == "I":
        return Image.fromarray(SIXTEEN.astype(np.int32), mode="I")
    if mode == "F":
        return Image.fromarray((LEVELS / 255.0).astype(np.float32), mode="F")
    gray = Image.fromarray(LEVELS, mode="L")
    if mode == "LAB":
        return gray.convert("RGB").convert("LAB")
    return gray.convert(mode) if mode in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX",
                                          "CMYK", "YCbCr", "HSV") else gray.convert(
        "RGBA").convert(mode)


def folder_with(tmp_path, name: str, image: Image.Image, fmt: str = "PNG", **kwargs):
    (tmp_path / "data" / "a").mkdir(parents=True, exist_ok=True)
    image.save(tmp_path / "data" / "a" / name, format=fmt)
    return ImageFolder(str(tmp_path / "data"), **kwargs)


def test_issue_example_16_bit_grayscale_png_is_scaled_not_clipped_to_white(tmp_path):
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    image = Image.new("I;16", (64, 64))
    image.putdata(ramp.ravel().tolist())
    folder = folder_with(tmp_path, "ramp.png", image, channels=1)
    x = folder[0]["x"]
    assert Image.open(folder.paths[0]).mode == "I;16"  # the file really is 16-bit
    assert x.shape == (64, 64, 1)
    np.testing.assert_allclose(x[..., 0], ramp / 65535.0, atol=1e-6)
    assert (x == 1.0).mean() < 0.01


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("image_size", [None, 4])
@pytest.mark.parametrize("mode", Image.MODES)
def test_every_pillow_mode_is_scaled_to_unit_range_or_refused_naming_the_file(
        tmp_path, mode, channels, image_size):
    folder = folder_with(tmp_path, "probe.png", Image.new("L", (3, 2)), channels=channels,
                         image_size=image_size)
    try:
        image = gray_in_mode(mode)
    except ValueError:  # Pillow cannot even build this mode from gray levels
        image = Image.new(mode, (3, 2))
    try:
        x = folder.pixels(image, "dir/odd.png")
    except DataError as err:
        assert str(err).startswith("dir/odd.png: ") and repr(mode) in str(err)
        assert mode in ("La",)  # the only mode refused; each other one is read
        return
    side = (2, 3) if image_size is None else (image_size, image_size)
    assert x.shape == side + (channels,) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    if image_size is None:
        expected = (LEVELS >= 128).astype(np.float32) if mode == "1" else LEVELS / 255.0
        # 8-bit colour-space round trips (YCbCr, LAB, HSV, CMYK) may move a level by 2/255
        np.testing.assert_allclose(x, np.repeat(expected[..., None], channels, -1),
                                   atol=2.5 / 255)
    else:
        reference = folder.pixels(Image.fromarray(LEVELS, mode="L"), "ref.png")
        if mode != "1":
            np.testing.assert_allclose(x, reference, atol=3 / 255)


@pytest.mark.parametrize("mode,fmt", [("I;16", "PNG"), ("I;16B", "TIFF"), ("I", "TIFF"),
                                      ("F", "TIFF"), ("LAB", "TIFF"), ("CMYK", "TIFF"),
                                      ("YCbCr", "TIFF"), ("PA", "TIFF"), ("1", "PNG")])
def test_files_of_wide_and_colour_space_modes_read_their_levels(tmp_path, mode, fmt):
    folder = folder_with(tmp_path, "img.png", gray_in_mode(mode), fmt, channels=1)
    expected = (LEVELS >= 128) if mode == "1" else LEVELS / 255.0
    np.testing.assert_allclose(folder[0]["x"][..., 0], expected, atol=2.5 / 255)


@pytest.mark.parametrize("values,seen", [([0.0, 2.0], r"\[0.0, 2.0\]"),
                                         ([0.0, np.nan], r"\[0.0, 0.0\] with NaN/Inf")])
def test_float_pixels_outside_unit_range_are_refused_naming_the_file(tmp_path, values, seen):
    image = Image.fromarray(np.array([values], np.float32), mode="F")
    folder = folder_with(tmp_path, "float.png", image, "TIFF")
    with pytest.raises(DataError, match=r"float.png: float pixels \(mode F\) range over "
                       + seen + r".*expected finite values in \[0, 1\]"):
        folder[0]


def test_32_bit_integer_pixels_beyond_16_bits_are_refused_naming_the_file(tmp_path):
    image = Image.fromarray(np.array([[0, 70000]], np.int32), mode="I")
    folder = folder_with(tmp_path, "wide.png", image, "TIFF")
    with pytest.raises(DataError, match=r"wide.png: 32-bit integer pixels \(mode I\) range "
                       r"over \[0, 70000\]; expected 16-bit values"):
        folder[0]


@pytest.mark.parametrize("side", [4, 8])  # 16 px: Pillow only warns; 64 px: Pillow raises
def test_decompression_bomb_is_a_bad_example_named_and_skippable(tmp_path, monkeypatch, side):
    root = tmp_path / "data"
    for name, size in (("000.png", 2), ("001.png", side), ("002.png", 2)):
        (root / "a").mkdir(parents=True, exist_ok=True)
        Image.new("L", (size, size), 128).save(root / "a" / name)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    folder = ImageFolder(str(root), image_size=2)
    with pytest.warns(Image.DecompressionBombWarning) if side == 4 else contextlib.nullcontext():
        with pytest.raises(DataError, match=r"001.png: .*decompression bomb"):
            folder[1]
    assert folder.load(1, skip_bad=True) is None
    source = StreamingSource(folder, 3, seed=0, skip_bad=True)
    try:
        batch = source.step_inputs(0, 1).fields
    finally:
        source.close()
    assert source.skipped == 1 and float(np.asarray(batch["mask"]).sum()) == 2.0

