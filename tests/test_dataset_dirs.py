"""Where the named datasets are read from: Debian's directory by default when it holds
the files, `data/<name>` otherwise, `--config.data.dir` whenever it is set, and one
clear error naming every place looked in (jaxdl.data.datasets.data_dir)."""

import dataclasses

import numpy as np
import pytest

from conftest import load_experiment
from formats import random_mnist, write_mnist
from jaxdl.data import datasets
from jaxdl.errors import ConfigError
from jaxdl.recipes.vision import load_image_splits


@pytest.fixture
def system_dir(tmp_path, monkeypatch):
    """Fashion-MNIST's system directory moved under tmp_path (empty until a test fills
    it), and the working directory set to tmp_path so `data/<name>` is the test's own."""
    directory = tmp_path / "usr-share-datasets-fashion-mnist"
    row = dataclasses.replace(datasets.DATASETS["fashion_mnist"], system_dirs=(str(directory),))
    monkeypatch.setitem(datasets.DATASETS, "fashion_mnist", row)
    monkeypatch.chdir(tmp_path)
    return directory


def loaded_train_pixels(config) -> np.ndarray:
    """The uint8 training images `[N, 28, 28]` that `config.data` loads."""
    return np.rint(load_image_splits(config.data)["train"]["x"][..., 0] * 255).astype(np.uint8)


def test_fashion_mnist_default_reads_the_system_directory(system_dir, tmp_path):
    arrays = write_mnist(system_dir, random_mnist(seed=1), gz=True)  # as Debian ships them
    write_mnist(tmp_path / "data" / "fashion_mnist", random_mnist(seed=2), gz=False)
    config = load_experiment("fashion_mnist_cnn").get_config()
    assert config.data.dir == ""  # the default: look in the default places
    assert datasets.data_dir(config.data) == str(system_dir)
    np.testing.assert_array_equal(loaded_train_pixels(config), arrays["train-images-idx3-ubyte"])


def test_fashion_mnist_default_falls_back_to_data_dir_without_the_package(system_dir, tmp_path):
    system_dir.mkdir()
    write_mnist(system_dir, {"train-images-idx3-ubyte": random_mnist()["train-images-idx3-ubyte"]},
                gz=True)  # one file of four: the package directory does not count
    arrays = write_mnist(tmp_path / "data" / "fashion_mnist", random_mnist(seed=3), gz=False)
    config = load_experiment("fashion_mnist_cnn").get_config()
    assert datasets.data_dir(config.data) == "data/fashion_mnist"
    np.testing.assert_array_equal(loaded_train_pixels(config), arrays["train-images-idx3-ubyte"])


def test_an_explicit_data_dir_wins_over_the_system_directory(system_dir, tmp_path):
    write_mnist(system_dir, random_mnist(seed=1), gz=True)
    mine = write_mnist(tmp_path / "mine", random_mnist(seed=4), gz=False)
    config = load_experiment("fashion_mnist_cnn").get_config()
    config.data.dir = str(tmp_path / "mine")
    np.testing.assert_array_equal(loaded_train_pixels(config), mine["train-images-idx3-ubyte"])


def test_no_files_anywhere_is_a_config_error_naming_both_places(system_dir):
    config = load_experiment("fashion_mnist_cnn").get_config()
    with pytest.raises(ConfigError) as info:
        load_image_splits(config.data)
    message = str(info.value)
    assert f"neither '{system_dir}' nor 'data/fashion_mnist' holds the files" in message
    assert "t10k-labels-idx1-ubyte" in message
    assert "--config.data.dir=DIR" in message and "apt-get install dataset-fashion-mnist" in message


def test_download_with_no_files_goes_to_data_name(system_dir):
    config = load_experiment("fashion_mnist_cnn").get_config()
    config.data.download = True
    assert datasets.data_dir(config.data) == "data/fashion_mnist"


def test_mnist_default_is_data_mnist(tmp_path, monkeypatch):
    # Debian packages no MNIST: the default place is data/mnist, and a missing file there
    # is the IDX loader's own error (names the file and how to download it).
    monkeypatch.chdir(tmp_path)
    config = load_experiment("mnist_cnn").get_config()
    assert datasets.data_dir(config.data) == "data/mnist"
    arrays = write_mnist(tmp_path / "data" / "mnist", random_mnist(seed=5), gz=True)
    np.testing.assert_array_equal(loaded_train_pixels(config), arrays["train-images-idx3-ubyte"])


def test_the_table_points_fashion_mnist_at_debians_directory():
    row = datasets.DATASETS["fashion_mnist"]
    assert row.system_dirs == ("/usr/share/datasets/fashion-mnist",)
    assert set(row.files) == {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}


def test_streamed_readers_use_the_same_default(system_dir, tmp_path):
    arrays = write_mnist(system_dir, random_mnist(seed=6), gz=True)
    config = load_experiment("fashion_mnist_cnn").get_config()
    train, test = datasets.example_readers(config.data, str(tmp_path / "cache"))
    np.testing.assert_array_equal(np.rint(train[2]["x"][..., 0] * 255).astype(np.uint8),
                                  arrays["train-images-idx3-ubyte"][2])
    assert int(test[1]["y"]) == int(arrays["t10k-labels-idx1-ubyte"][1])
