"""Evaluation on streamed data inside ``fit``: batch by batch at ``eval_every`` and at
the end, the same metrics as the same split in memory, never the whole split at once."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from conftest import load_experiment, tiny_config
from image_folder_files import write_split_folders
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.sklearn import load_sklearn
from jaxdl.data.streamed_split import EvalBatchLoader, StreamedSplit
from jaxdl.train.streamed_eval import StreamedEval
from jaxdl.errors import DataError
from jaxdl.models.mlp import MLP
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit


class CountingReader(ArrayDataset):
    """Counts every example read; ``to_arrays`` is absent, so nothing can load the split."""

    def __init__(self, arrays):
        super().__init__(arrays)
        self.reads = 0

    def __getitem__(self, index):
        self.reads += 1
        return super().__getitem__(index)


def _fit(train, test, info, eval_batch_size=100):
    config = tiny_config(batch_size=32, num_steps=30, log_every=10, eval_every=10,
                         eval_batch_size=eval_batch_size, eval_train=False)
    model = MLP(info.num_features, (16,), info.num_classes, rngs=nnx.Rngs(0))
    return fit(model, task_lib.classification(), train, eval_data={"test": test},
               config=config)


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_split_in_fit_gives_the_in_memory_splits_metrics(workers):
    splits, info = load_sklearn("digits")
    train = ArrayDataset(splits["train"], name="train")
    memory = _fit(train, ArrayDataset(splits["test"], name="test"), info)
    records = CountingReader(splits["test"])
    stream = _fit(train, StreamedSplit(records, workers=workers), info)
    assert stream.params_sha256 == memory.params_sha256
    assert stream.metrics["test"] == memory.metrics["test"]  # bitwise: same batches, same sums
    evals = [e for e in stream.history if e["split"] == "test"]
    assert [e["step"] for e in evals] == [10, 20, 30]
    assert evals == [e for e in memory.history if e["split"] == "test"]
    # Three periodic evaluations and the final one (computed again, logged once): every
    # example read once each; the last batch's padding copies a read example. Two more
    # are read once by fit's checks before compiling.
    assert len(records) % 100 and records.reads == 4 * len(records) + 2


def test_streamed_eval_outside_fit_gives_fits_final_metrics():
    splits, info = load_sklearn("digits")
    memory = _fit(ArrayDataset(splits["train"], name="train"),
                  ArrayDataset(splits["test"], name="test"), info)
    evaluator = StreamedEval(memory.model, task_lib.classification(),
                             ArrayDataset(splits["test"]), 100, workers=2)
    assert evaluator.run() == memory.metrics["test"]


def test_eval_batch_loader_reads_only_its_rows_and_pads_past_the_end():
    arrays = {"x": np.arange(22, dtype=np.float32)[:, None], "y": np.arange(22)}
    records = CountingReader(arrays)
    # Batch 3 of 6 covers positions 18..23; rows [3, 6) are 21 and two past the end.
    batch = EvalBatchLoader(records, 6, 3, 6)(3)
    np.testing.assert_array_equal(batch["y"], [21, 21, 21])
    np.testing.assert_array_equal(batch["mask"], [1, 0, 0])
    assert records.reads == 1
    # Rows [0, 3) of the same batch hold no real example past 20 ... but 18, 19, 20 are real.
    np.testing.assert_array_equal(EvalBatchLoader(records, 6, 0, 3)(3)["y"], [18, 19, 20])
    # A slice wholly past the end is padded with the split's last example, all masked.
    empty = EvalBatchLoader(records, 8, 6, 8)(2)
    np.testing.assert_array_equal(empty["y"], [21, 21])
    np.testing.assert_array_equal(empty["mask"], [0, 0])


def test_a_streamed_split_that_does_not_fit_the_model_fails_before_compiling():
    splits, info = load_sklearn("digits")
    wrong = {"x": splits["test"]["x"][:, :10], "y": splits["test"]["y"]}
    with pytest.raises(DataError, match=r"dataset 'val' field 'x' \(shape \[2, 10\] dtype "
                                        r"float32\) does not fit the model MLP"):
        _fit(ArrayDataset(splits["train"], name="train"),
             StreamedSplit(ArrayDataset(wrong, name="val"), name="val"), info)


def test_an_empty_streamed_split_is_a_data_error():
    with pytest.raises(DataError, match="streamed evaluation split 'val' has no examples"):
        StreamedSplit(_NoExamples(), name="val")


class _NoExamples:
    """An example reader with no example (an ``ArrayDataset`` refuses to be empty)."""

    def __len__(self):
        return 0

    def __getitem__(self, index):
        raise IndexError(index)


def test_imagefolder_cnn_evaluates_its_streamed_test_folder_at_eval_every(tmp_path):
    root = write_split_folders(tmp_path / "images", test_per_class=5)
    experiment = load_experiment("imagefolder_cnn")
    runs = {}
    for source in ("arrays", "stream"):
        config = experiment.get_config()
        config.data.update(dir=str(root), image_size=8, source=source, workers=1)
        config.model = dict(name="small_cnn", hidden=16, dropout=0.0)
        config.train.update(batch_size=6, num_steps=8, steps_per_loop=2, log_every=4,
                            eval_every=4, eval_batch_size=4, progress_bar=False)
        runs[source] = experiment.run(config, str(tmp_path / source))
    assert runs["stream"]["params_sha256"] == runs["arrays"]["params_sha256"]
    assert runs["stream"]["metrics"]["test"] == runs["arrays"]["metrics"]["test"]
    logged = {}
    for source in runs:
        lines = (tmp_path / source / "metrics.jsonl").read_text().splitlines()
        logged[source] = [line for line in lines if '"test"' in line]
    assert len(logged["stream"]) == 2 and logged["stream"] == logged["arrays"]
