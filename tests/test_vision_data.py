"""Vision readers on fixture files written in the exact real formats."""

import gzip
import io

import numpy as np
import pytest

from formats import (idx_bytes, make_tar_gz, random_cifar_batch, random_mnist, write_cifar,
                     write_mnist, write_pickle, write_random_cifar10)
from jaxdl.data.formats.cifar import load_cifar
from jaxdl.data.formats.idx import load_mnist, read_idx
from jaxdl.data.formats.sklearn import load_digits_images
from jaxdl.errors import DataError


# ---------------------------------------------------------------- digits


def test_digits_images_shapes_range_and_determinism():
    first = load_digits_images()
    second = load_digits_images()
    assert first["train"]["x"].shape == (1437, 8, 8, 1)
    assert first["test"]["x"].shape == (360, 8, 8, 1)
    assert first["train"]["x"].dtype == np.float32 and first["train"]["y"].dtype == np.int32
    assert first["train"]["x"].min() == 0.0 and first["train"]["x"].max() == 1.0
    np.testing.assert_array_equal(first["test"]["y"], second["test"]["y"])
    # Stratified: each of the 10 classes has 35 or 36 test images.
    assert set(np.bincount(first["test"]["y"])) <= {35, 36, 37}
    other = load_digits_images(seed=1)
    assert not np.array_equal(first["test"]["y"], other["test"]["y"])


# ---------------------------------------------------------------- IDX

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_every_type_raw_and_gzipped(tmp_path, dtype, gz):
    array = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    content = idx_bytes(array)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(content) if gz else content)
    read = read_idx(path)
    assert read.shape == (2, 3, 4) and read.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(read, array)


def test_read_idx_known_bytes(tmp_path):
    # 1-D int16 [2]: values 258 and -2, big-endian, written out byte by byte.
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))
    np.testing.assert_array_equal(read_idx(path), np.array([258, -2], np.int16))


def test_read_idx_bad_magic_names_file_and_bytes(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x50\x4b\x03\x04" + bytes(100))  # a zip, not IDX
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: bad IDX magic number 50 4b 03 04; "
                       r"expected 00 00 <type> <ndim>"):
        read_idx(path)


def test_read_idx_unknown_type_code(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(DataError, match=r"bad IDX magic number 00 00 07 01"):
        read_idx(path)


def test_read_idx_short_data_says_expected_and_seen(tmp_path):
    content = idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-10]
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte" in message
    assert "needs 2352 data bytes after the 16-byte header, but the file has 2342 (truncated?)" in message


def test_read_idx_header_longer_than_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1]))
    with pytest.raises(DataError, match=r"declares 3 dimensions, which need a 16-byte header, but the file has 8 bytes"):
        read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8) % 10))[:-20])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: corrupt or truncated gzip"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_fixture_exactly(tmp_path, gz):
    arrays = write_mnist(tmp_path, random_mnist(), gz=gz)
    data = load_mnist(tmp_path)
    assert data["train"]["x"].shape == (5, 28, 28, 1) and data["train"]["x"].dtype == np.float32
    assert data["test"]["x"].shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(data["train"]["x"][..., 0] * 255.0,
                                  arrays["train-images-idx3-ubyte"].astype(np.float32))
    np.testing.assert_array_equal(data["test"]["y"], arrays["t10k-labels-idx1-ubyte"].astype(np.int32))
    assert data["test"]["y"].dtype == np.int32


def test_load_mnist_missing_file_names_it_and_how_to_get_it(tmp_path):
    write_mnist(tmp_path, random_mnist(), gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path, kind="fashion_mnist")
    message = str(info.value)
    assert "fashion_mnist files missing in" in message and ": t10k-labels-idx1-ubyte." in message
    assert "train-images-idx3-ubyte, train-labels-idx1-ubyte" in message
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" in message
    assert "config.data.download=True" in message


def test_load_mnist_label_count_mismatch(tmp_path):
    write_mnist(tmp_path, random_mnist(), gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DataError, match=r"has 4 labels but .*train-images-idx3-ubyte has 5 images"):
        load_mnist(tmp_path)


def test_load_mnist_wrong_image_size(tmp_path):
    write_mnist(tmp_path, random_mnist(), gz=False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((5, 32, 32), np.uint8)))
    with pytest.raises(DataError, match=r"images of shape \(5, 32, 32\) and dtype uint8; expected \[N, 28, 28\]"):
        load_mnist(tmp_path)


# ---------------------------------------------------------------- CIFAR


def test_cifar_pixel_order_is_rgb_nhwc():
    # One image whose red plane is 0..1023 mod 256, green 7, blue 200.
    data = np.concatenate([np.arange(1024) % 256, np.full(1024, 7), np.full(1024, 200)]).astype(np.uint8)
    from jaxdl.data.formats.cifar import decode_batch
    images, _ = decode_batch({b"data": data[None], b"labels": [3]}, b"labels", 10, "fixture")
    assert images.shape == (1, 32, 32, 3)
    assert images[0, 0, 1].tolist() == [1, 7, 200]  # row 0, column 1
    assert images[0, 1, 0].tolist() == [32, 7, 200]  # row 1, column 0


@pytest.mark.parametrize("form", ["directory", "parent", "archive", "archive_parent"])
def test_load_cifar10_every_path_form(tmp_path, form):
    directory, expected = write_random_cifar10(tmp_path / "src")
    archive = make_tar_gz(directory, tmp_path / "cifar-10-python.tar.gz")
    path = {"directory": directory, "parent": directory.parent,
            "archive": archive, "archive_parent": tmp_path}[form]
    data = load_cifar(path)
    assert data["train"]["x"].shape == (15, 32, 32, 3) and data["train"]["x"].dtype == np.float32
    assert data["test"]["x"].shape == (3, 32, 32, 3)
    train_images = np.concatenate([expected[f"data_batch_{k}"][0] for k in range(1, 6)])
    np.testing.assert_array_equal(data["train"]["x"] * 255.0, train_images.astype(np.float32))
    np.testing.assert_array_equal(data["test"]["y"], np.array(expected["test_batch"][1], np.int32))
    assert data["test"]["y"].dtype == np.int32


def test_load_cifar100_fine_and_coarse(tmp_path):
    batches = {name: random_cifar_batch(4, seed, {b"fine_labels": 100, b"coarse_labels": 20}, name)
               for seed, name in enumerate(["train", "test"])}
    directory = write_cifar(tmp_path / "cifar-100-python", {n: b for n, (b, _) in batches.items()})
    archive = make_tar_gz(directory, tmp_path / "cifar-100-python.tar.gz")
    fine = load_cifar(archive, num_classes=100)
    coarse = load_cifar(directory, num_classes=100, label_kind="coarse")
    np.testing.assert_array_equal(fine["train"]["y"], batches["train"][0][b"fine_labels"])
    np.testing.assert_array_equal(coarse["test"]["y"], batches["test"][0][b"coarse_labels"])
    np.testing.assert_array_equal(fine["test"]["x"] * 255.0, batches["test"][1].astype(np.float32))


def test_python2_style_numpy_core_pickle_is_accepted(tmp_path):
    # The official batches were pickled by Python 2 with numpy.core.multiarray.
    directory, expected = write_random_cifar10(tmp_path)
    path = directory / "test_batch"
    path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    np.testing.assert_array_equal(load_cifar(tmp_path)["test"]["y"], expected["test_batch"][1])


def test_truncated_cifar_pickle_is_a_clear_error(tmp_path):
    directory, _ = write_random_cifar10(tmp_path)
    path = directory / "data_batch_3"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError) as info:
        load_cifar(directory)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot unpickle")
    assert "expected a complete CIFAR python-version batch" in message
    assert "The file may be truncated: download it again." in message


def test_cifar_pickle_may_not_run_code(tmp_path):
    directory, _ = write_random_cifar10(tmp_path)
    write_pickle(directory / "test_batch", {b"data": io.BytesIO()})
    with pytest.raises(DataError, match=r"global _io.BytesIO is not allowed"):
        load_cifar(directory)


def test_truncated_cifar_archive_is_a_clear_error(tmp_path):
    directory, _ = write_random_cifar10(tmp_path / "src")
    archive = make_tar_gz(directory, tmp_path / "cifar-10-python.tar.gz")
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(DataError, match=r"cifar-10-python.tar.gz.*(cannot read the tar archive|cannot unpickle)"):
        load_cifar(archive)


def test_cifar_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as info:
        load_cifar(tmp_path)
    message = str(info.value)
    assert message.startswith(f"no CIFAR-10 data at {tmp_path}: expected the directory cifar-10-batches-py/")
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "config.data.download=True" in message


def test_cifar_wrong_data_shape(tmp_path):
    directory, _ = write_random_cifar10(tmp_path)
    batch, _ = random_cifar_batch(2, 0, {b"labels": 10})
    batch[b"data"] = batch[b"data"][:, :1024]
    write_pickle(directory / "test_batch", batch)
    with pytest.raises(DataError, match=r"test_batch: b'data' has shape \(2, 1024\) and dtype uint8; expected uint8 \[N, 3072\]"):
        load_cifar(directory)
