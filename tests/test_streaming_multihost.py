"""Two processes on 127.0.0.1 train one streamed image-folder run: each opens only
its own half of every global batch's files, and the parameters match the
one-process run within float tolerance (the gradient mean is summed in another order)."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np

from image_folder_files import write_image_folder
from jaxdl.data.sources import step_indices
from test_multihost import _params, _start_pair, _wait

EXPERIMENT = '''
import json, os
import jax
import numpy as np
from jaxdl.config import default_config
from jaxdl.data.image_folder import ImageFolder
from jaxdl.data.streaming import StreamingSource
from jaxdl.recipes.vision import build_model, image_task
from jaxdl.train.loop import fit
from jaxdl.workdir import fit_summary
import ml_collections

ROOT = {root!r}


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
    c.train.eval_train = False
    c.train.progress_bar = False
    c.checkpoint.every_steps = 4
    return c


def run(config, workdir):
    folder = CountingFolder(ROOT, image_size=8)
    folder.seen = []
    model = build_model(ml_collections.ConfigDict(config.model), num_classes=3,
                        image_shape=(8, 8, 3), seed=config.seed)
    source = StreamingSource.from_config(folder, config)
    try:
        result = fit(model, image_task(ml_collections.ConfigDict(dict(
            normalize_mean=(), normalize_std=(), crop_padding=0, flip=False)), 3),
                     source, config=config, workdir=workdir)
    finally:
        source.close()
    with open(os.path.join(workdir, f"opened-{{jax.process_index()}}.json"), "w") as f:
        json.dump(folder.seen, f)
    if jax.process_index() == 0:
        flat = jax.tree_util.tree_flatten_with_path(jax.device_get(result.state.params))[0]
        np.savez(os.path.join(workdir, "params.npz"),
                 **{{jax.tree_util.keystr(p): np.asarray(v) for p, v in flat}})
    return fit_summary(config.experiment, result, config, processes=jax.process_count())
'''


def test_two_processes_each_read_their_half_and_match_one_process(tmp_path):
    root = write_image_folder(tmp_path / "train", per_class=8, size=8)
    config_path = str(tmp_path / "stream_mh.py")
    with open(config_path, "w") as f:
        f.write(EXPERIMENT.format(root=str(root)))
    two = str(tmp_path / "two")
    procs = _start_pair(config_path, two)
    spec = importlib.util.spec_from_file_location("stream_mh_reference", config_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    single = str(tmp_path / "single")
    os.makedirs(single)
    module.run(module.get_config(), single)
    _wait(procs, two)

    paths = sorted(str(p) for p in root.rglob("*.png"))  # the folder's order: class, file
    halves = [json.load(open(os.path.join(two, f"opened-{i}.json"))) for i in range(2)]
    for rank, seen in enumerate(halves):
        # Process `rank` decoded rows [3 rank, 3 rank + 3) of each global batch of 6,
        # step after step (8 steps, then at most a few steps of read-ahead), nothing else.
        steps = len(seen) // 3
        assert len(seen) % 3 == 0 and 8 <= steps <= 12, len(seen)
        want = [paths[i] for s in range(steps)
                for i in step_indices(0, 24, 6, s, 1)[0][3 * rank:3 * rank + 3]]
        assert seen == want
    single_params, two_params = _params(single), _params(two)
    for name in single_params:
        np.testing.assert_allclose(two_params[name], single_params[name], rtol=1e-4,
                                   atol=1e-5, err_msg=name)
    assert json.load(open(os.path.join(two, "summary.json")))["processes"] == 2
