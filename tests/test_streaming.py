"""The streaming source: the same batches as the in-memory source (so the same
parameters), exact resume after SIGKILL, worker threads and processes, skips."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_experiment
from image_folder_files import write_split_folders
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.sources import ArrayTrainSource
from jaxdl.data.streaming import StreamingSource


def tiny_config(root, **data):
    config = load_experiment("imagefolder_cnn").get_config()
    config.data.dir = str(root)
    config.data.image_size = 8
    config.data.update(data)
    config.model = dict(name="small_cnn", hidden=16, dropout=0.0)
    config.train.update(batch_size=6, num_steps=8, steps_per_loop=2, log_every=4,
                        eval_batch_size=4, progress_bar=False)
    return config


def test_streamed_examples_are_the_array_sources_gathered_examples():
    arrays = {"x": np.arange(40, dtype=np.float32).reshape(20, 2), "y": np.arange(20)}
    in_memory = ArrayTrainSource(ArrayDataset(arrays), 4, seed=3)
    streamed = StreamingSource(ArrayDataset(arrays), 4, seed=3, workers=2)
    try:
        for step in (0, 4, 5, 11):  # 5 steps per epoch: crosses epochs, jumps back
            idx = in_memory.step_inputs(step, 2)
            got = streamed.step_inputs(step, 2)
            np.testing.assert_array_equal(np.asarray(got.fields["y"]), arrays["y"][idx])
            np.testing.assert_array_equal(np.asarray(got.fields["x"]), arrays["x"][idx])
            np.testing.assert_array_equal(np.asarray(got.fields["mask"]), np.ones((2, 4)))
    finally:
        streamed.close()


@pytest.mark.parametrize("workers,mode", [(0, "threads"), (2, "threads")])
def test_streamed_run_ends_with_the_in_memory_runs_parameters(tmp_path, workers, mode):
    root = write_split_folders(tmp_path / "images")
    experiment = load_experiment("imagefolder_cnn")
    memory = experiment.run(tiny_config(root, source="arrays"), None)
    stream = experiment.run(tiny_config(root, source="stream", workers=workers,
                                        worker_mode=mode), None)
    assert stream["params_sha256"] == memory["params_sha256"]
    assert stream["steps"] == memory["steps"] == 8
    assert stream["metrics"]["test"] == memory["metrics"]["test"]  # streamed eval in fit
    assert stream["data"]["skipped_examples"] == 0


def test_vision_recipe_streams_with_data_source_stream():
    runs = {}
    for source in ("arrays", "stream"):
        config = load_experiment("cnn_digits").get_config()
        config.data.source = source
        config.data.workers = 1
        config.model.hidden = 16
        config.train.update(num_steps=4, steps_per_loop=2, log_every=2, eval_every=0,
                            eval_train=False, progress_bar=False)
        runs[source] = load_experiment("cnn_digits").run(config, None)
    assert runs["stream"]["params_sha256"] == runs["arrays"]["params_sha256"]
    assert runs["stream"]["metrics"]["test"] == runs["arrays"]["metrics"]["test"]


def test_decoded_cache_decodes_each_image_once_within_its_bound(tmp_path):
    from image_folder_files import write_image_folder
    from jaxdl.data.decoded_cache import DecodedCache
    from jaxdl.data.formats.image_folder import ImageFolder
    root = write_image_folder(tmp_path / "train", per_class=4, size=8)  # 12 images
    example_bytes = 8 * 8 * 3 * 4 + 4  # float32 pixels and an int32 label
    for max_bytes, decoded in ((10 ** 6, 12), (5 * example_bytes, None)):
        folder = ImageFolder(str(root), image_size=8)
        cached = DecodedCache(folder, max_bytes)
        plain = ImageFolder(str(root), image_size=8)
        streamed = StreamingSource(cached, 6, seed=2)  # one reader: no two decode one image
        reference = StreamingSource(plain, 6, seed=2)
        try:
            for step in range(0, 8, 2):  # four epochs of two steps
                got, want = streamed.step_inputs(step, 2), reference.step_inputs(step, 2)
                for key in want.fields:
                    np.testing.assert_array_equal(np.asarray(got.fields[key]),
                                                  np.asarray(want.fields[key]))
        finally:
            streamed.close()
            reference.close()
        assert cached.held_bytes <= max_bytes and cached.classes == folder.classes
        if decoded is not None:
            assert folder.opened == decoded  # every image once, then from memory
        else:
            assert len(cached._cache) == 5 and folder.opened > 12


def test_imagefolder_cnn_with_a_decoded_cache_ends_with_the_same_parameters(tmp_path):
    root = write_split_folders(tmp_path / "images")
    experiment = load_experiment("imagefolder_cnn")
    memory = experiment.run(tiny_config(root, source="arrays"), None)
    cached = experiment.run(tiny_config(root, source="stream", workers=2, cache_mb=1), None)
    assert cached["params_sha256"] == memory["params_sha256"]
