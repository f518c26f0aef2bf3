"""The TrainSource protocol fit reads from: its implementations and the refusal of others."""

from __future__ import annotations

import numpy as np
import pytest

from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.sources import (ArrayTrainSource, LabelBudgetSource, TrainSource,
                                as_train_source)
from jaxdl.errors import DataError

DATA = ArrayDataset({"x": np.arange(20, dtype=np.float32).reshape(10, 2),
                     "y": np.arange(10, dtype=np.int32) % 2}, name="train")


def test_array_and_label_budget_sources_implement_the_protocol():
    array = as_train_source(DATA, batch_size=4, seed=0)
    budget = LabelBudgetSource(DATA, np.array([1, 3, 5]), 4, seed=0)
    for source in (array, budget):
        assert isinstance(source, TrainSource)
        inputs = source.step_inputs(3, 2)
        assert inputs.shape == (2, 4) and inputs.dtype == np.int32
        batch = source.make_batch(source.device_arrays(), inputs[0])
        np.testing.assert_array_equal(np.asarray(batch["y"]), DATA.arrays["y"][inputs[0]])
        np.testing.assert_array_equal(np.asarray(batch["mask"]), np.ones(4, np.float32))
    assert isinstance(array, ArrayTrainSource) and array.steps_per_epoch == 2
    assert budget.steps_per_epoch == 1 and set(budget.step_inputs(0, 5).ravel()) == {1, 3, 5}


def test_a_source_is_passed_through_and_a_non_source_is_refused():
    budget = LabelBudgetSource(DATA, np.array([1, 3, 5]), 4, seed=0)
    assert as_train_source(budget, batch_size=4, seed=0) is budget
    with pytest.raises(DataError, match=r"fit's train data is a dict, which lacks "
                       r"\['steps_per_epoch', 'device_arrays', 'step_inputs', 'make_batch'\]"):
        as_train_source({"x": DATA.arrays["x"]}, batch_size=4, seed=0)
