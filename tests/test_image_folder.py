"""The image-folder reader: layout, labels, decoding, resizing, and bad input
(each a DataError naming the file), with the explicit skip flag that counts skips."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_experiment
from image_folder_files import write_image_folder, write_split_folders
from jaxdl.data.formats.image_folder import HostAugment, ImageFolder
from jaxdl.data.streaming import StreamingSource
from jaxdl.errors import DataError


def test_classes_sorted_labels_and_pixels(tmp_path):
    from PIL import Image
    root = write_image_folder(tmp_path / "train", per_class=2, size=6, mode="L",
                              classes=("zebra", "ant"))
    folder = ImageFolder(str(root), channels=1)
    assert folder.classes == ["ant", "zebra"]
    assert folder.labels.tolist() == [0, 0, 1, 1]
    example = folder[2]
    want = np.asarray(Image.open(root / "zebra" / "000.png"), np.float32)[..., None] / 255
    np.testing.assert_array_equal(example["x"], want)
    assert example["y"] == 1 and folder.opened == 1
    assert ImageFolder(str(root), channels=3, image_size=4)[0]["x"].shape == (4, 4, 3)
    assert ImageFolder(str(root), image_size=4, resize="crop").image_shape() == (4, 4, 3)


def _pillow_reference(path, channels, size, resize):
    """What decode must equal: Image.open, convert, resize (or crop), to float."""
    from PIL import Image
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        if size is not None and resize == "crop":
            width, height = image.size
            scale = size / min(width, height)
            image = image.resize((max(size, round(width * scale)),
                                  max(size, round(height * scale))), resample=2)
            left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
            image = image.crop((left, top, left + size, top + size))
        elif size is not None:
            image = image.resize((size, size), resample=2)
        pixels = np.asarray(image, np.uint8)
    return (pixels[..., None] if pixels.ndim == 2 else pixels).astype(np.float32) / 255.0


def test_decode_equals_plain_pillow_convert_and_resize_bitwise(tmp_path):
    # decode skips same-mode converts and same-size resizes and probes PNG/JPEG first;
    # the pixels must stay those of the plain path, for any mode, size or format.
    from PIL import Image
    rng = np.random.default_rng(0)
    folder = tmp_path / "a"
    folder.mkdir()
    images = []
    for mode, bands in (("RGB", 3), ("L", 1), ("RGBA", 4), ("LA", 2)):
        for shape in ((8, 8), (5, 11)):
            pixels = rng.integers(0, 256, shape + (bands,), dtype=np.uint8)
            images.append(Image.fromarray(pixels[..., 0] if bands == 1 else pixels, mode))
    images.append(images[0].convert("P"))
    for i, image in enumerate(images):
        image.save(folder / f"{i:02d}.png")
    images[0].save(folder / "20.jpg")
    images[1].save(folder / "21.png", format="GIF")  # named .png: Pillow's other plugins
    for channels in (1, 3):
        for size, resize in ((None, "stretch"), (8, "stretch"), (8, "crop"), (4, "crop")):
            reader = ImageFolder(str(tmp_path), channels=channels, image_size=size,
                                 resize=resize)
            for path in reader.paths:
                got, want = reader.decode(path), _pillow_reference(path, channels, size, resize)
                assert got.dtype == want.dtype and got.shape == want.shape, path
                np.testing.assert_array_equal(got, want, err_msg=path)


def test_host_augmentation_is_a_function_of_seed_step_and_index():
    example = {"x": np.arange(16, dtype=np.float32).reshape(4, 4, 1), "y": np.int32(0)}
    augment = HostAugment(crop_padding=1, flip=True)
    a = augment(example, np.random.default_rng([0, 5, 3]))["x"]
    b = augment(example, np.random.default_rng([0, 5, 3]))["x"]
    np.testing.assert_array_equal(a, b)
    others = [augment(example, np.random.default_rng([0, s, 3]))["x"] for s in range(8)]
    assert any(not np.array_equal(a, o) for o in others)


def test_empty_class_folder(tmp_path):
    root = write_image_folder(tmp_path / "train", per_class=1)
    (root / "fox").mkdir()
    with pytest.raises(DataError, match=r"class folder .*/fox is empty; expected image files"):
        ImageFolder(str(root))


def test_non_image_file(tmp_path):
    root = write_image_folder(tmp_path / "train", per_class=1)
    (root / "cat" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"cat/notes.txt is not an image file; expected one of"):
        ImageFolder(str(root))


def test_class_in_test_but_not_in_train(tmp_path):
    write_split_folders(tmp_path, train_per_class=1, test_per_class=1)
    write_image_folder(tmp_path / "test", per_class=1, classes=("yak",))
    train = ImageFolder(str(tmp_path / "train"))
    with pytest.raises(DataError, match=r"class folder .*test/yak is not a class of the "
                                        r"training split; expected one of \['cat', 'dog', 'eel'\]"):
        ImageFolder(str(tmp_path / "test"), classes=train.classes)


def truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def test_truncated_and_unreadable_images(tmp_path):
    root = write_image_folder(tmp_path / "train", per_class=2, size=16)
    truncate(root / "dog" / "001.png")
    (root / "eel" / "000.jpg").write_bytes(b"not a jpeg at all")
    folder = ImageFolder(str(root))
    with pytest.raises(DataError, match=r"dog/001.png: cannot decode the image .*expected a "
                                        r"complete PNG or JPEG file"):
        folder[3]
    with pytest.raises(DataError, match=r"eel/000.jpg: cannot decode the image"):
        folder[4]
    assert folder.load(3, skip_bad=True) is None


def test_skip_flag_masks_counts_and_logs_each_skip(tmp_path, caplog):
    root = write_image_folder(tmp_path / "train", per_class=2, size=16)
    truncate(root / "dog" / "001.png")
    source = StreamingSource(ImageFolder(str(root)), 6, seed=0, skip_bad=True)
    try:
        with caplog.at_level("WARNING"):
            batch = source.step_inputs(0, 1).fields  # one epoch: all six examples
    finally:
        source.close()
    assert source.skipped == 1
    assert np.asarray(batch["mask"]).sum() == 5
    bad = int(np.flatnonzero(np.asarray(batch["mask"])[0] == 0)[0])
    assert int(np.asarray(batch["y"])[0, bad]) == 0  # a zero-filled placeholder, masked out
    assert "dog/001.png" in caplog.text

    strict = StreamingSource(ImageFolder(str(root)), 6, seed=0)
    try:
        with pytest.raises(DataError, match=r"dog/001.png"):
            strict.step_inputs(0, 1)
    finally:
        strict.close()


def test_experiment_stops_on_a_bad_file_before_training(tmp_path):
    root = write_split_folders(tmp_path / "images", train_per_class=2, test_per_class=1)
    (root / "test" / "cat" / "README").write_text("x")
    config = load_experiment("imagefolder_cnn").get_config()
    config.data.dir = str(root)
    with pytest.raises(DataError, match=r"test/cat/README is not an image file"):
        load_experiment("imagefolder_cnn").run(config, str(tmp_path / "work"))
    assert not (tmp_path / "work").exists()
