"""Small convolutional classifiers: the PyTorch CIFAR-10 tutorial net, LeNet-5, and
a digits CNN.

Every model takes NHWC images, convolves through `jaxdl.ops.conv` (the `conv_impl`
argument, one of `jaxdl.ops.conv.CONV_IMPLS`, picks the implementation), exposes
`features(x, *, rngs=None) -> [B, D]` (the penultimate representation) and keeps
its classifier in `head` (an `nnx.Linear`), so that transfer learning can
re-initialise `head` and probe `features`.
"""

import jax
from flax import nnx

from jaxdl.models.conv import Conv2d
from jaxdl.ops.conv import max_pool


def _flatten(x: jax.Array) -> jax.Array:
    """`[B, H, W, C] -> [B, H*W*C]` (HWC order, not PyTorch's CHW)."""
    return x.reshape(x.shape[0], -1)


class _ConvPoolNet(nnx.Module):
    """conv 6@5x5 -> ReLU -> pool -> conv 16@5x5 VALID -> ReLU -> pool -> 120 -> 84 -> head.

    The body LeNet-5 and the PyTorch tutorial net share; they differ only in the
    first convolution's padding (and so in the input size that gives 5x5x16).
    """

    def __init__(self, num_classes: int, in_channels: int, first_padding: str, *,
                 conv_impl: str | None = None, rngs: nnx.Rngs):
        self.conv1 = Conv2d(in_channels, 6, 5, padding=first_padding, impl=conv_impl,
                            rngs=rngs)
        self.conv2 = Conv2d(6, 16, 5, padding="VALID", impl=conv_impl, rngs=rngs)
        self.fc1 = nnx.Linear(16 * 5 * 5, 120, rngs=rngs)
        self.fc2 = nnx.Linear(120, 84, rngs=rngs)
        self.head = nnx.Linear(84, num_classes, rngs=rngs)

    def features(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """`[B, H, W, C] -> [B, 84]`, the input of `head`."""
        h = max_pool(jax.nn.relu(self.conv1(x)), 2)
        h = max_pool(jax.nn.relu(self.conv2(h)), 2)
        h = jax.nn.relu(self.fc1(_flatten(h)))
        return jax.nn.relu(self.fc2(h))

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """`[B, H, W, C] -> [B, num_classes]` logits."""
        return self.head(self.features(x, rngs=rngs))


class TutorialCNN(_ConvPoolNet):
    """The network of PyTorch's "Training a classifier" CIFAR-10 tutorial.

    conv 6@5x5 VALID -> ReLU -> 2x2 max-pool -> conv 16@5x5 VALID -> ReLU ->
    pool -> flatten (5*5*16 = 400) -> fc 120 -> ReLU -> fc 84 -> ReLU -> head.
    With 10 classes it has exactly the tutorial's 62,006 parameters.

    Args:
      num_classes: outputs of `head`.
      in_channels: input channels (3 for CIFAR).
      conv_impl: the convolution implementation request; None: the default.
      rngs: supplies the `params` key.

    Input `[B, 32, 32, in_channels]`; output logits `[B, num_classes]`.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, *,
                 conv_impl: str | None = None, rngs: nnx.Rngs):
        super().__init__(num_classes, in_channels, "VALID", conv_impl=conv_impl, rngs=rngs)


class LeNet5(_ConvPoolNet):
    """LeNet-5 for 28x28 images (MNIST, Fashion-MNIST), with ReLU and max-pooling.

    conv 6@5x5 SAME -> ReLU -> pool -> conv 16@5x5 VALID -> ReLU -> pool ->
    flatten (5*5*16 = 400) -> fc 120 -> ReLU -> fc 84 -> ReLU -> head.
    The SAME first convolution stands in for LeCun's 32x32 zero-padded input.

    Args:
      num_classes: outputs of `head`.
      in_channels: input channels (1 for MNIST).
      conv_impl: the convolution implementation request; None: the default.
      rngs: supplies the `params` key.

    Input `[B, 28, 28, in_channels]`; output logits `[B, num_classes]`.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *,
                 conv_impl: str | None = None, rngs: nnx.Rngs):
        super().__init__(num_classes, in_channels, "SAME", conv_impl=conv_impl, rngs=rngs)


class SmallCNN(nnx.Module):
    """A small CNN for scikit-learn's 8x8 digits.

    conv 32@3x3 SAME -> ReLU -> conv 64@3x3 SAME -> ReLU -> 2x2 max-pool ->
    flatten (4*4*64 = 1024) -> dense 128 -> ReLU -> dropout -> head.

    Args:
      num_classes: outputs of `head`.
      in_channels: input channels (1 for digits).
      hidden: width of the dense layer, i.e. of `features`.
      dropout_rate: dropout before `head`, drawn from the call-time `rngs`.
      conv_impl: the convolution implementation request; None: the default.
      rngs: supplies the `params` key.

    Input `[B, H, W, in_channels]` with H and W divisible by 2 (8x8 for digits;
    `image_size` sets the expected size); output logits `[B, num_classes]`.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        image_size: int = 8,
        hidden: int = 128,
        dropout_rate: float = 0.5,
        conv_impl: str | None = None,
        rngs: nnx.Rngs,
    ):
        self.conv1 = Conv2d(in_channels, 32, 3, padding="SAME", impl=conv_impl, rngs=rngs)
        self.conv2 = Conv2d(32, 64, 3, padding="SAME", impl=conv_impl, rngs=rngs)
        pooled = image_size // 2
        self.fc = nnx.Linear(pooled * pooled * 64, hidden, rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate)
        self.head = nnx.Linear(hidden, num_classes, rngs=rngs)

    def features(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """`[B, 8, 8, C] -> [B, hidden]`, the input of `head` (before dropout)."""
        h = jax.nn.relu(self.conv1(x))
        h = max_pool(jax.nn.relu(self.conv2(h)), 2)
        return jax.nn.relu(self.fc(_flatten(h)))

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """`[B, 8, 8, C] -> [B, num_classes]` logits; dropout draws from `rngs`."""
        return self.head(self.dropout(self.features(x, rngs=rngs), rngs=rngs))

