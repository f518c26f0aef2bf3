"""Backpropagation written out: the chain rule layer by layer, as a lecture derives it.

For an MLP ``a_0 = x``, ``z_l = a_{l-1} W_l + b_l``, ``a_l = f(z_l)`` and softmax
cross-entropy on the last ``z_L``:

    δ_L = (softmax(z_L) - onehot(y)) / B
    ∂L/∂W_l = a_{l-1}ᵀ δ_l,  ∂L/∂b_l = Σ_batch δ_l
    δ_{l-1} = (δ_l W_lᵀ) ⊙ f'(z_{l-1})

``manual_gradients`` computes exactly this and returns a pytree shaped like the
``jaxdl.models.mlp.MLP`` parameters, so it can be compared with ``jax.grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# f'(z) of each activation, written by hand (no autodiff here on purpose).
DERIVATIVES = {
    "relu": lambda z: (z > 0).astype(z.dtype),
    "tanh": lambda z: 1.0 - jnp.tanh(z) ** 2,
    "sigmoid": lambda z: jax.nn.sigmoid(z) * (1.0 - jax.nn.sigmoid(z)),
    "identity": lambda z: jnp.ones_like(z),
}
FUNCTIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid,
             "identity": lambda z: z}


def _layers(params: dict) -> list[dict]:
    hidden = [params["layers"][k] for k in sorted(params["layers"], key=int)]
    return hidden + [params["head"]]


def manual_gradients(params: dict, x: jax.Array, y: jax.Array, *,
                     activation: str = "relu") -> tuple[jax.Array, dict]:
    """Loss and ``∂loss/∂params`` of an MLP by the explicit chain rule.

    Args:
      params: the MLP's pure-dict parameters (``{"layers": {i: {kernel, bias}},
        "head": {kernel, bias}}``).
      x: ``[B, D]`` inputs.
      y: ``[B]`` integer labels.
      activation: one of relu, tanh, sigmoid, identity.
    Returns:
      ``(loss, grads)`` with ``grads`` shaped like ``params``.
    """
    f, df = FUNCTIONS[activation], DERIVATIVES[activation]
    layers = _layers(params)
    activations, pre = [x], []
    for i, layer in enumerate(layers):  # forward pass, keeping z_l and a_l
        z = activations[-1] @ layer["kernel"] + layer["bias"]
        pre.append(z)
        activations.append(f(z) if i < len(layers) - 1 else z)
    logits = pre[-1]
    probs = jax.nn.softmax(logits)
    onehot = jax.nn.one_hot(y, logits.shape[-1])
    batch = x.shape[0]
    loss = -jnp.sum(onehot * jax.nn.log_softmax(logits)) / batch

    grads = [None] * len(layers)
    delta = (probs - onehot) / batch  # δ_L
    for l in reversed(range(len(layers))):  # backward pass
        grads[l] = {"kernel": activations[l].T @ delta, "bias": jnp.sum(delta, axis=0)}
        if l > 0:
            delta = (delta @ layers[l]["kernel"].T) * df(pre[l - 1])
    out = {"layers": {k: grads[i] for i, k in enumerate(sorted(params["layers"], key=int))},
           "head": grads[-1]}
    return loss, out
