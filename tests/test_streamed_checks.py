"""Streamed data gets the checks in-memory data gets: every batch, as it arrives,
naming the example's index in the reader (issue 28, class E)."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from conftest import tiny_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.batch_checks import BatchChecks, LabelRange
from jaxdl.data.streamed_split import EvalBatchLoader, StreamedSplit
from jaxdl.data.streaming import StepLoader, StreamingSource
from jaxdl.errors import DataError
from jaxdl.models.mlp import MLP
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit

N, FEATURES = 48, 4


class Records:
    """An example reader over arrays that are not checked when built (like records
    decoded from files): ``x [N, 4]`` float32, ``y [N]`` int32."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> dict:
        return {"x": self.x[index], "y": self.y[index]}


def clean(classes: int = 10):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(N, FEATURES)).astype(np.float32),
            rng.integers(0, classes, N).astype(np.int32))


def fit_streamed(train, *, eval_data=None, classes=10, task=None, workers=0, steps=12):
    model = MLP(FEATURES, (8,), classes, rngs=nnx.Rngs(0))
    source = StreamingSource(train, 8, seed=0, workers=workers)
    try:
        return fit(model, task or task_lib.classification(), source, eval_data=eval_data,
                   config=tiny_config(num_steps=steps, eval_every=0))
    finally:
        source.close()


def test_issue_example_label_15_for_a_10_class_model_streamed_from_arrays_is_refused():
    x, y = clean()
    y[37] = 15  # not among the first examples fit samples: found when its batch is read
    with pytest.raises(DataError, match=r"dataset 'train' field 'y' has label 15 at index 37 "
                       r"of the reader \(streamed batch of step \d+\).*expected integers in "
                       r"\[0, 9\] for the model's 10 output classes"):
        fit_streamed(ArrayDataset({"x": x, "y": y}))


def test_issue_example_nan_in_streamed_training_data_is_refused():
    x, y = clean()
    x[29, 2] = np.nan
    with pytest.raises(DataError, match=r"dataset 'train' field 'x' has a non-finite value nan "
                       r"at index \(29, 2\) of the reader \(streamed batch of step \d+\)"):
        fit_streamed(Records(x, y))


def test_issue_example_out_of_range_label_in_a_streamed_split_is_refused():
    x, y = clean()
    test_y = y.copy()
    test_y[40] = 10
    test = StreamedSplit(Records(x, test_y), name="test")
    with pytest.raises(DataError, match=r"dataset 'test' field 'y' has label 10 at index 40 of "
                       r"the reader \(evaluation batch \d+\).*\[0, 9\]"):
        fit_streamed(Records(x, y), eval_data={"test": test})


def corrupt(kind: str):
    """Clean records with one bad entry of ``kind`` at record 41."""
    x, y = clean()
    if kind == "nan":
        x[41, 0] = np.nan
    elif kind == "inf":
        x[41, 3] = -np.inf
    elif kind == "label too high":
        y[41] = 10
    elif kind == "negative label":
        y[41] = -1
    return x, y


KINDS = ["nan", "inf", "label too high", "negative label"]
LABELS = LabelRange("y", 0, 9, "the model's 10 output classes")


@pytest.mark.parametrize("kind", KINDS)
def test_both_streamed_loaders_refuse_every_kind_of_bad_record_naming_its_index(kind):
    x, y = corrupt(kind)
    checks = BatchChecks("s", LABELS)
    train = StepLoader(Records(x, y), 8, 0, 0, 8, checks=checks)
    evaluation = EvalBatchLoader(Records(x, y), 8, checks=checks)
    for loader, count in ((train, 60), (evaluation, 6)):
        with pytest.raises(DataError, match=r"dataset 's' field '[xy]' has .* at index "
                           r"\(?41\b.* of the reader"):
            for i in range(count):  # 10 epochs of train steps; every evaluation batch
                loader(i)


@pytest.mark.parametrize("where,kind", [("train", "inf"), ("train, 2 worker threads", "nan"),
                                        ("streamed test split", "negative label")])
def test_fit_refuses_a_bad_record_wherever_it_streams(kind, where):
    x, y = corrupt(kind)
    if where == "streamed test split":
        clean_x, clean_y = clean()
        eval_data = {"test": StreamedSplit(Records(x, y), name="test", workers=2)}
        train, workers = Records(clean_x, clean_y), 0
    else:
        eval_data, train = None, Records(x, y)
        workers = 2 if "worker" in where else 0
    with pytest.raises(DataError, match=r"at index \(?41\b.* of the reader"):
        fit_streamed(train, eval_data=eval_data, workers=workers)


def test_clean_streamed_data_trains_as_in_memory_data():
    x, y = clean()
    streamed = fit_streamed(Records(x, y), eval_data={"test": StreamedSplit(Records(x, y))})
    model = MLP(FEATURES, (8,), 10, rngs=nnx.Rngs(0))
    memory = fit(model, task_lib.classification(), ArrayDataset({"x": x, "y": y}),
                 eval_data={"test": ArrayDataset({"x": x, "y": y}, name="test")},
                 config=tiny_config(num_steps=12, eval_every=0))
    assert streamed.params_sha256 == memory.params_sha256
