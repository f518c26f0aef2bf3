import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdl import losses
from jaxdl.models.backprop import manual_gradients
from jaxdl.models.mlp import MLP


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_manual_backward_equals_jax_grad(activation):
    model = MLP(12, (16, 8, 8), 5, activation=activation, rngs=nnx.Rngs(3))
    graphdef, params = nnx.split(model, nnx.Param)
    params = nnx.to_pure_dict(params)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(20, 12)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 5, size=20))

    def loss_fn(p):
        return losses.softmax_cross_entropy(nnx.merge(graphdef, p)(x), y)

    loss, auto = jax.value_and_grad(loss_fn)(params)
    manual_loss, manual = manual_gradients(params, x, y, activation=activation)
    assert float(manual_loss) == pytest.approx(float(loss), abs=1e-6)
    flat_auto = jax.tree_util.tree_leaves_with_path(auto)
    flat_manual = dict(jax.tree_util.tree_leaves_with_path(manual))
    assert len(flat_auto) == len(flat_manual) == 8
    for path, grad in flat_auto:
        np.testing.assert_allclose(flat_manual[path], grad, atol=1e-5, rtol=0)
