"""`Conv2d`: the 2-D convolution layer every jaxdl CNN is built from."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdl.ops.conv import Padding, as_pair, conv2d, lax_padding
from jaxdl.ops.conv_policy import check_impl


class Conv2d(nnx.Module):
    """A 2-D convolution layer (NHWC) that convolves through `jaxdl.ops.conv.conv2d`.

    Parameters are initialised like `flax.nnx.Conv`: the kernel from
    LeCun-normal, the bias zeros.

    Args:
      in_features: input channels `Cin`.
      out_features: output channels `Cout`.
      kernel_size: an int or `(kh, kw)`.
      strides: an int or `(sh, sw)`.
      padding: `'SAME'`, `'VALID'`, an int, or `((top, bottom), (left, right))`.
      use_bias: whether to add a learned bias `[Cout]`.
      precision: passed to `conv2d`; None follows JAX's default (TF32 on GPUs).
      impl: the implementation request passed to `conv2d` (one of
        `jaxdl.ops.conv.CONV_IMPLS`); None follows `conv_implementation` and
        `$JAXDL_CONV_IMPL`.
      rngs: supplies the `params` key for initialisation.

    Attributes:
      kernel: `nnx.Param [kh, kw, Cin, Cout]`.
      bias: `nnx.Param [Cout]`, or None when `use_bias=False`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int | Sequence[int],
        *,
        strides: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        use_bias: bool = True,
        precision: jax.lax.PrecisionLike = None,
        impl: str | None = None,
        rngs: nnx.Rngs,
    ):
        kh, kw = as_pair(kernel_size, "kernel_size")
        self.strides = as_pair(strides, "strides")
        # Normalised (hashable) and validated now rather than at the first call.
        self.padding = lax_padding(padding)
        self.precision = precision
        self.impl = check_impl(impl, "Conv2d impl") if impl else None
        init = nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(
            init(rngs.params(), (kh, kw, in_features, out_features), jnp.float32)
        )
        self.bias = (
            nnx.Param(jnp.zeros((out_features,), jnp.float32)) if use_bias else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """Convolves `x [B, H, W, Cin]` into `[B, H', W', Cout]`."""
        y = conv2d(x, self.kernel[...], strides=self.strides, padding=self.padding,
                   precision=self.precision, impl=self.impl)
        if self.bias is not None:
            y = y + self.bias[...]
        return y
