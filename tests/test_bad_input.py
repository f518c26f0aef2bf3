"""Bad input fails early with a message naming the bad value, what was expected and where."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from flax import nnx

import fault_runs
from conftest import tiny_config, tiny_data
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.idx import read_idx
from jaxdl.data.formats.conllu import read_conllu
from jaxdl.errors import ConfigError, DataError, ShapeMismatchError
from jaxdl.models.mlp import MLP
from jaxdl.run import check_overrides
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit


def mlp(features=4, hidden=8, classes=3):
    return MLP(features, (hidden,), classes, rngs=nnx.Rngs(0))


# --- configuration ---------------------------------------------------------------------

def test_unknown_config_key_exits_2_suggesting_the_closest_key(tmp_path):
    done = fault_runs.run_to_end(tmp_path / "run", "--config.optimizer.lrr=0.1")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: unknown config key 'optimizer.lrr' (command-line flag "
        "'--config.optimizer.lrr=0.1'); did you mean 'optimizer.lr'?")
    assert not (tmp_path / "run").exists()  # refused before the workdir was touched


def test_config_value_of_wrong_type_exits_2_naming_key_value_and_type(tmp_path):
    done = fault_runs.run_to_end(tmp_path / "run", "--config.train.batch_size=abc")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: config key 'train.batch_size' got 'abc' (command-line flag "
        "'--config.train.batch_size=abc'); expected an integer, like its default 32")


def test_float_for_an_integer_key_is_refused():
    with pytest.raises(ConfigError, match=r"config key 'train.batch_size' got '3.5' .*expected "
                       r"an integer, like its default 32"):
        check_overrides([f"--config={fault_runs.EXPERIMENT}", "--config.train.batch_size=3.5"])
    with pytest.raises(ConfigError, match=r"'optimizer.lr' got 'fast' .*expected a number"):
        check_overrides([f"--config={fault_runs.EXPERIMENT}", "--config.optimizer.lr=fast"])
    check_overrides([f"--config={fault_runs.EXPERIMENT}", "--config.optimizer.lr=1e-2"])


def test_bad_config_value_set_in_python_is_refused():
    config = tiny_config()
    config.nan_policy = "ignore"
    with pytest.raises(ConfigError, match=r"config.nan_policy='ignore'; expected one of "
                       r"\('none', 'raise', 'skip'\)"):
        fit(mlp(), task_lib.classification(), tiny_data(), config=config)


# --- data against the model ------------------------------------------------------------

def test_feature_size_not_matching_the_model():
    with pytest.raises(DataError) as info:
        fit(mlp(features=4), task_lib.classification(), tiny_data(features=5), config=tiny_config())
    assert str(info.value).startswith(
        "dataset 'train' field 'x' (shape [32, 5] dtype float32) does not fit the model MLP: "
        "TypeError: dot_general requires contracting dimensions to have the same shape, "
        "got (5,) and (4,)")


class BagOfWords(nnx.Module):
    """Token ids ``[B, T]`` -> class scores ``[B, 3]`` (needs integer inputs)."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.embed = nnx.Embed(10, 4, rngs=rngs)
        self.head = nnx.Linear(4, 3, rngs=rngs)

    def __call__(self, ids, *, rngs=None):
        return self.head(self.embed(ids).mean(axis=1))


def test_float_inputs_for_a_model_that_takes_token_ids():
    with pytest.raises(DataError) as info:
        fit(BagOfWords(rngs=nnx.Rngs(0)), task_lib.classification(), tiny_data(features=6),
            config=tiny_config())
    assert str(info.value).startswith(
        "dataset 'train' field 'x' (shape [32, 6] dtype float32) does not fit the model "
        "BagOfWords: ValueError: Input type must be an integer or unsigned integer")


def test_text_field_is_refused_naming_its_dtype():
    data = tiny_data(words=np.array(["w"] * 32))
    with pytest.raises(DataError, match=r"dataset 'train' field 'words' has dtype <U1; expected "
                       r"bool, integer or float numbers"):
        fit(mlp(), task_lib.classification(), data, config=tiny_config())


@pytest.mark.parametrize("bad_label, message", [
    (3, "has label 3 at index 5 (1 label(s) out of range); expected integers in [0, 2] for "
        "the model's 3 output classes. Check the label encoding"),
    (-1, "has label -1 at index 5 (1 label(s) out of range); expected integers in [0, 2] for "
         "the model's 3 output classes. Negative labels are never valid. Check the label"),
])
def test_labels_out_of_range_or_negative(bad_label, message):
    data = tiny_data()
    labels = data.arrays["y"].copy()
    labels[5] = bad_label
    test = ArrayDataset({"x": data.arrays["x"], "y": labels}, name="test")
    with pytest.raises(DataError) as info:
        fit(mlp(), task_lib.classification(), data, eval_data={"test": test}, config=tiny_config())
    assert str(info.value).startswith(f"dataset 'test' field 'y' {message}")


def test_target_shape_not_matching_the_output():
    data = tiny_data(y=np.zeros((32, 2), np.float32))
    with pytest.raises(DataError, match=r"dataset 'train' field 'y' \(shape \[32, 2\] dtype "
                       r"float32\) does not fit the model's output \(shape \[2, 3\]"):
        fit(mlp(), task_lib.classification(), data, config=tiny_config())


def test_nan_in_input_data_names_field_and_index():
    x = np.ones((10, 4), np.float32)
    x[3, 1] = np.nan
    with pytest.raises(DataError, match=r"dataset 'train' field 'x' has a non-finite value nan "
                       r"at index \(3, 1\); expected finite numbers"):
        ArrayDataset({"x": x, "y": np.zeros(10, np.int32)}, name="train")


def test_empty_dataset():
    with pytest.raises(DataError, match=r"dataset 'train' is empty \(0 examples\); expected at "
                       "least one"):
        ArrayDataset({"x": np.zeros((0, 4), np.float32), "y": np.zeros(0, np.int32)}, name="train")


def test_train_batch_larger_than_dataset():
    with pytest.raises(DataError, match=r"train batch_size=64 is larger than dataset 'train' "
                       r"\(32 examples\); expected batch_size <= 32"):
        fit(mlp(), task_lib.classification(), tiny_data(), config=tiny_config(batch_size=64))


def test_batch_not_dividing_over_two_devices(tmp_path):
    done = fault_runs.run_to_end(tmp_path / "run", "--config.mesh.data=2",
                                 "--config.train.batch_size=33",
                                 XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        "error: config.train.batch_size=33 does not divide over the mesh's data axis of 2 "
        "devices; expected a multiple of 2 (e.g. 32)")


def test_restoring_into_a_model_of_another_shape_lists_paths_and_shapes(tmp_path):
    fit(mlp(hidden=8), task_lib.classification(), tiny_data(), config=tiny_config(),
        workdir=str(tmp_path))
    with pytest.raises(ShapeMismatchError) as info:
        fit(mlp(hidden=16), task_lib.classification(), tiny_data(), config=tiny_config(),
            workdir=str(tmp_path))
    message = str(info.value)
    assert message.startswith(f"checkpoint {tmp_path / 'checkpoints'}/4 does not fit this model")
    assert "params/layers/0/kernel: checkpoint (4, 8) vs model (4, 16)" in message
    assert "params/head/kernel: checkpoint (8, 3) vs model (16, 3)" in message


# --- data files ------------------------------------------------------------------------

def test_missing_data_files(tmp_path):
    with pytest.raises(DataError, match=rf"cannot read IDX file {tmp_path}/absent-idx3-ubyte"):
        read_idx(tmp_path / "absent-idx3-ubyte")
    with pytest.raises(DataError, match=rf"{tmp_path}/absent.conllu: cannot read the file: "
                       "No such file or directory"):
        read_conllu(tmp_path / "absent.conllu")


def test_truncated_gzipped_idx_data(tmp_path):
    # A valid header for 3 images of 2x2 (uint8), gzipped, with one byte missing.
    truncated = tmp_path / "t10k-images-idx3-ubyte.gz"
    header = bytes([0, 0, 0x08, 3]) + np.array([3, 2, 2], ">u4").tobytes()
    truncated.write_bytes(gzip.compress(header + bytes(11)))
    with pytest.raises(DataError, match=r"header shape \(3, 2, 2\) of uint8 needs 12 data bytes "
                       r"after the 16-byte header, but the file has 11 \(truncated\?\)"):
        read_idx(truncated)
