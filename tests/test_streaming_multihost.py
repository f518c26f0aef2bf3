"""Two processes on 127.0.0.1 train one streamed image-folder run: each opens only
its own half of every global batch's files, and the parameters match the
one-process run within float tolerance (the gradient mean is summed in another order).
The checkpoints the two processes wrote restore in one process: the last one to the
very parameters, the middle one to resume and finish the run alone."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil

import numpy as np
import pytest

from image_folder_files import write_image_folder
from jaxdl.data.sources import step_indices
from test_multihost import _params, _start_pair, _wait

EXPERIMENT = '''
import json, os
import jax
import numpy as np
from jaxdl.config import default_config
from jaxdl.data.formats.image_folder import ImageFolder
from jaxdl.data.streamed_split import StreamedSplit
from jaxdl.data.streaming import StreamingSource
from jaxdl.recipes.vision import build_model, image_task
from jaxdl.train.loop import fit
from jaxdl.workdir import fit_summary
import ml_collections

ROOT = {root!r}
TEST = {test!r}


class CountingFolder(ImageFolder):
    """Records every file this process decodes."""

    def decode(self, path):
        self.seen.append(path)
        return super().decode(path)


def get_config():
    c = default_config()
    c.experiment = "stream_mh"
    c.data = ml_collections.ConfigDict(dict(workers=0, worker_mode="threads", prefetch=2))
    c.model = dict(name="small_cnn", hidden=16, dropout=0.0)
    c.train.batch_size = 6
    c.train.num_steps = 8
    c.train.steps_per_loop = 2
    c.train.log_every = 4
    c.train.eval_every = 4
    c.train.eval_batch_size = 4
    c.train.eval_train = False
    c.train.progress_bar = False
    c.checkpoint.every_steps = 4
    return c


def run(config, workdir):
    folder = CountingFolder(ROOT, image_size=8)
    folder.seen = []
    test = CountingFolder(TEST, image_size=8)
    test.seen = []
    model = build_model(ml_collections.ConfigDict(config.model), num_classes=3,
                        image_shape=(8, 8, 3), seed=config.seed)
    source = StreamingSource.from_config(folder, config)
    try:
        result = fit(model, image_task(ml_collections.ConfigDict(dict(
            normalize_mean=(), normalize_std=(), crop_padding=0, flip=False)), 3),
                     source, eval_data={{"test": StreamedSplit(test)}}, config=config,
                     workdir=workdir)
    finally:
        source.close()
    with open(os.path.join(workdir, f"opened-{{jax.process_index()}}.json"), "w") as f:
        json.dump(folder.seen, f)
    with open(os.path.join(workdir, f"opened-test-{{jax.process_index()}}.json"), "w") as f:
        json.dump(test.seen, f)
    if jax.process_index() == 0:
        flat = jax.tree_util.tree_flatten_with_path(jax.device_get(result.state.params))[0]
        np.savez(os.path.join(workdir, "params.npz"),
                 **{{jax.tree_util.keystr(p): np.asarray(v) for p, v in flat}})
    return fit_summary(config.experiment, result, config, processes=jax.process_count())
'''


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The two-process run and the one-process reference, and a loader of the experiment."""
    tmp_path = tmp_path_factory.mktemp("stream_mh")
    root = write_image_folder(tmp_path / "train", per_class=8, size=8)
    test = write_image_folder(tmp_path / "test", per_class=3, size=8, seed=1)
    config_path = str(tmp_path / "stream_mh.py")
    with open(config_path, "w") as f:
        f.write(EXPERIMENT.format(root=str(root), test=str(test)))
    two = str(tmp_path / "two")
    procs = _start_pair(config_path, two)
    spec = importlib.util.spec_from_file_location("stream_mh_reference", config_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    single = str(tmp_path / "single")
    os.makedirs(single)
    summary = module.run(module.get_config(), single)
    _wait(procs, two)
    return {"root": root, "test": test, "two": two, "single": single, "module": module,
            "tmp": tmp_path, "single_summary": summary}


def test_two_processes_each_read_their_half_and_match_one_process(runs):
    root, two, single = runs["root"], runs["two"], runs["single"]
    paths = sorted(str(p) for p in root.rglob("*.png"))  # the folder's order: class, file
    halves = [json.load(open(os.path.join(two, f"opened-{i}.json"))) for i in range(2)]
    for rank, seen in enumerate(halves):
        # fit's checks read the first two; then process `rank` decoded rows
        # [3 rank, 3 rank + 3) of each global batch of 6, step after step (8 steps,
        # then at most a few steps of read-ahead), nothing else.
        assert seen[:2] == paths[:2]
        steps = (len(seen) - 2) // 3
        assert (len(seen) - 2) % 3 == 0 and 8 <= steps <= 12, len(seen)
        want = [paths[i] for s in range(steps)
                for i in step_indices(0, 24, 6, s, 1)[0][3 * rank:3 * rank + 3]]
        assert seen[2:] == want
    assert_same_training(_params(two), _params(single))
    assert json.load(open(os.path.join(two, "summary.json")))["processes"] == 2


def test_two_processes_evaluate_a_streamed_split_each_reading_its_rows(runs):
    # 9 test images, batches of 4 split over 2 processes: rows [0, 2) and [2, 4) of
    # batches 0..2; past the end a process pads with the split's last image (8).
    paths = sorted(str(p) for p in runs["test"].rglob("*.png"))
    wanted = {0: [0, 1, 4, 5, 8], 1: [2, 3, 6, 7, 8]}
    for rank, indices in wanted.items():
        seen = json.load(open(os.path.join(runs["two"], f"opened-test-{rank}.json")))
        # fit's checks read the first two; then evaluations at steps 4 and 8, and the final one.
        assert seen == paths[:2] + [paths[i] for i in indices] * 3
    two = json.load(open(os.path.join(runs["two"], "summary.json")))["metrics"]["test"]
    single = runs["single_summary"]["metrics"]["test"]
    assert sorted(two) == sorted(single)
    for name, value in single.items():
        np.testing.assert_allclose(two[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


def assert_same_training(got: dict, want: dict) -> None:
    """The two runs trained the same parameters, up to the gradient's summation order.

    Each process convolves 3 images where one process convolves 6, so XLA blocks
    the sums differently; after 8 steps the few weights behind a ReLU or max-pool
    input that sat within rounding of its kink differ by up to ~4e-4 (seen with
    jax 0.12.1: 26 of conv2's 18,432 weights, all of one output channel). An error
    in which rows a process reads, or in averaging the gradient across processes,
    moves nearly every weight (Adam moves each by ~1e-3 a step here). So: at most
    1% of each tensor's weights differ beyond float tolerance, none by a step's size."""
    assert sorted(got) == sorted(want)
    for name in want:
        off = ~np.isclose(got[name], want[name], rtol=1e-4, atol=1e-5)
        assert off.mean() <= 0.01, (name, int(off.sum()), off.size)
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=5e-4, err_msg=name)


def _one_process_config(runs):
    """The experiment's config for one process resuming the two-process run: it was
    written with --config.mesh.data=2, so resuming it on one device is the documented
    force_resume case."""
    config = runs["module"].get_config()
    config.force_resume = True
    return config


def _copy_of_two(runs, name: str, drop_steps=()) -> str:
    workdir = str(runs["tmp"] / name)
    shutil.copytree(runs["two"], workdir)
    for step in drop_steps:
        shutil.rmtree(os.path.join(workdir, "checkpoints", str(step)))
    return workdir


def test_the_two_process_checkpoint_restores_in_one_process_to_the_same_params(runs):
    steps = [n for n in os.listdir(os.path.join(runs["two"], "checkpoints")) if n.isdigit()]
    assert sorted(steps) == ["4", "8"]
    workdir = _copy_of_two(runs, "restored")  # its newest checkpoint is the last step: no training
    runs["module"].run(_one_process_config(runs), workdir)
    restored, written = _params(workdir), _params(runs["two"])
    assert sorted(restored) == sorted(written)
    for name in written:
        np.testing.assert_array_equal(restored[name], written[name], err_msg=name)


def test_one_process_resumes_the_two_process_run_from_its_checkpoint(runs):
    workdir = _copy_of_two(runs, "resumed", drop_steps=(8,))  # resumes at step 4
    runs["module"].run(_one_process_config(runs), workdir)
    # Alone, after fit's checks read the first two, it decoded whole batches of 6 from
    # step 4 on (plus read-ahead), nothing before.
    paths = sorted(str(p) for p in runs["root"].rglob("*.png"))
    seen = json.load(open(os.path.join(workdir, "opened-0.json")))
    assert seen[:2] == paths[:2]
    steps = (len(seen) - 2) // 6
    assert (len(seen) - 2) % 6 == 0 and 4 <= steps <= 8, len(seen)
    assert seen[2:] == [paths[i] for s in range(4, 4 + steps)
                        for i in step_indices(0, 24, 6, s, 1)[0]]
    assert_same_training(_params(workdir), _params(runs["single"]))
