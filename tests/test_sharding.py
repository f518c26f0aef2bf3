"""Data-parallel and FSDP training on 8 forced host devices, and resharding restores.

The device count is fixed when jax starts, so each device count runs in its own
subprocess (``XLA_FLAGS=--xla_force_host_platform_device_count=N`` set before jax
is imported). The driver below trains the same tiny MLP and saves parameters.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_on_forced_devices
from jax.sharding import PartitionSpec as P

from jaxdl import distributed
from jaxdl.errors import ConfigError

DRIVER = '''
import json, sys
import jax
import numpy as np
from flax import nnx
from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.errors import ConfigError
from jaxdl.models.mlp import MLP
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit

out, mode = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 16)).astype(np.float32)
y = (x[:, 0] - x[:, 3] > 0).astype(np.int32)
train = ArrayDataset({"x": x, "y": y}, name="train")


def run(data=1, sharding="replicated", steps=40, workdir=None, batch=32, force_resume=False):
    c = default_config()
    c.force_resume = force_resume
    c.train.batch_size = batch
    c.train.num_steps = steps
    c.train.log_every = 10
    c.train.eval_train = False
    c.train.progress_bar = False
    c.mesh.data = data
    c.mesh.param_sharding = sharding
    c.optimizer.lr = 0.01
    model = MLP(16, (128,), 4, rngs=nnx.Rngs(0))
    return fit(model, task_lib.classification(), train, config=c, workdir=workdir)


def flat(tree):
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(p): v for p, v in leaves}


def save(name, result):
    np.savez(f"{out}/{name}.npz", **{k: np.asarray(v) for k, v in
                                     flat(jax.device_get(result.state.params)).items()})


info = {"devices": jax.device_count()}
if mode == "eight":
    save("data8", run(data=8))
    fsdp = run(data=8, sharding="fsdp")
    save("fsdp8", fsdp)
    info["param_specs"] = {k: str(v.sharding.spec) for k, v in flat(fsdp.state.params).items()}
    info["adam_mu_specs"] = {k: str(v.sharding.spec)
                             for k, v in flat(fsdp.state.opt_state[0].mu).items()}
    info["checkpoint_steps"] = run(data=8, sharding="fsdp", steps=20,
                                   workdir=f"{out}/ckpt").steps
    try:
        run(data=8, batch=30)
    except ConfigError as err:
        info["error"] = str(err)
else:
    save("single", run())
    # Written on 8 devices, FSDP-sharded, for 20 steps: another mesh and num_steps,
    # so resuming it here is the documented force_resume case.
    resumed = run(workdir=f"{out}/ckpt", force_resume=True)
    save("resumed", resumed)
    info["resumed_steps"] = resumed.steps
    info["resumed_specs"] = sorted({str(v.sharding.spec) for v in
                                    jax.tree.leaves(resumed.state.params)})
json.dump(info, open(f"{out}/{mode}.json", "w"))
'''


def _run_driver(tmp_path, mode: str, devices: int) -> dict:
    run_on_forced_devices(DRIVER, devices, args=(str(tmp_path), mode))
    return json.load(open(tmp_path / f"{mode}.json"))


def _params(tmp_path, name: str) -> dict[str, np.ndarray]:
    with np.load(tmp_path / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sharding")
    eight = _run_driver(tmp, "eight", 8)  # first: it writes the checkpoint
    one = _run_driver(tmp, "one", 1)
    return tmp, eight, one


@pytest.mark.parametrize("name", ["data8", "fsdp8"])
def test_eight_devices_match_single_device(results, name):
    tmp, eight, one = results
    assert eight["devices"] == 8 and one["devices"] == 1
    single, sharded = _params(tmp, "single"), _params(tmp, name)
    assert sorted(single) == sorted(sharded) and len(single) == 4
    for key in single:
        np.testing.assert_allclose(sharded[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert not np.array_equal(single["['layers'][0]['kernel']"], np.zeros((16, 128)))


def test_fsdp_shards_large_parameters_and_their_adam_moments(results):
    _, eight, _ = results
    big = "['layers'][0]['kernel']"  # [16, 128]: 2048 elements, 128 divides by 8
    assert eight["param_specs"][big] == str(P(None, "data"))
    assert eight["adam_mu_specs"][big] == str(P(None, "data"))
    assert eight["param_specs"]["['head']['kernel']"] == str(P())  # [128, 4]: 512 < 1024
    assert eight["param_specs"]["['layers'][0]['bias']"] == str(P())


def test_checkpoint_from_eight_devices_restores_on_one_and_continues(results):
    tmp, eight, one = results
    assert eight["checkpoint_steps"] == 20
    assert one["resumed_steps"] == 40 and one["resumed_specs"] == [str(P())]
    single, resumed = _params(tmp, "single"), _params(tmp, "resumed")
    for key in single:  # 20 steps on 8 devices + 20 on 1 ≈ 40 on 1
        np.testing.assert_allclose(resumed[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_batch_that_does_not_divide_over_data_axis_is_an_error(results):
    _, eight, _ = results
    assert eight["error"] == ("config.train.batch_size=30 does not divide over the mesh's data "
                              "axis of 8 devices; expected a multiple of 8 (e.g. 24)")


def test_fsdp_spec_picks_largest_divisible_dimension():
    assert distributed.fsdp_spec((784, 256), 8) == P("data", None)
    assert distributed.fsdp_spec((100, 256), 8) == P(None, "data")  # 100 % 8 != 0
    assert distributed.fsdp_spec((256,), 8, min_elements=1024) == P()  # small: replicated
    assert distributed.fsdp_spec((999, 1001), 8) == P()  # nothing divides
    assert distributed.fsdp_spec((784, 256), 1) == P()


def test_unknown_param_sharding_rule_is_an_error():
    mesh = distributed.make_mesh(1, 1)
    with pytest.raises(ConfigError, match=r"param_sharding='zero3'; expected one of "
                                          r"\('replicated', 'fsdp'\)"):
        distributed.state_shardings({"w": np.zeros(3)}, mesh, "zero3")
