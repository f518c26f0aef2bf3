"""CIFAR residual networks (He et al., 2016) with BatchNorm: ResNet-20 and a
ResNet-18-style variant with a 3x3 stem for 32x32 input.

BatchNorm statistics are `nnx.BatchStat`s: updated in training, used and left
unchanged in evaluation, when the trainer sets `use_running_average=True` with
`nnx.view`. Like the other CNNs, each network exposes `features(x) -> [B, D]`
(after global average pooling) and its classifier `head` (an `nnx.Linear`).
"""

from collections.abc import Sequence

import jax
from flax import nnx

from jaxdl.models.conv import Conv2d
from jaxdl.ops.conv import global_avg_pool

# PyTorch's BatchNorm momentum 0.1 (weight of the new batch) is flax's 0.9 (weight
# of the old average); flax's default 0.99 lags too far behind in short CIFAR runs.
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5


def _batch_norm(features: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(
        features, momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON, rngs=rngs
    )


class BasicBlock(nnx.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection.

    When the block changes resolution or width, the shortcut is a strided 1x1
    convolution with BatchNorm (He et al.'s option B), otherwise the identity.

    Args:
      in_features: input channels.
      out_features: output channels.
      strides: stride of the first convolution (2 halves H and W).
      rngs: supplies the `params` key.

    Input `[B, H, W, in_features]`; output `[B, H/strides, W/strides, out_features]`.
    """

    def __init__(self, in_features: int, out_features: int, *, strides: int = 1, rngs: nnx.Rngs):
        # Convolutions before BatchNorm need no bias: BatchNorm's shift replaces it.
        self.conv1 = Conv2d(
            in_features, out_features, 3, strides=strides, use_bias=False, rngs=rngs
        )
        self.bn1 = _batch_norm(out_features, rngs)
        self.conv2 = Conv2d(out_features, out_features, 3, use_bias=False, rngs=rngs)
        self.bn2 = _batch_norm(out_features, rngs)
        if strides != 1 or in_features != out_features:
            self.shortcut_conv = Conv2d(
                in_features, out_features, 1, strides=strides, use_bias=False, rngs=rngs
            )
            self.shortcut_bn = _batch_norm(out_features, rngs)
        else:
            self.shortcut_conv = None
            self.shortcut_bn = None

    def __call__(self, x: jax.Array) -> jax.Array:
        """`[B, H, W, Cin] -> [B, H', W', Cout]`."""
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        shortcut = x
        if self.shortcut_conv is not None:
            shortcut = self.shortcut_bn(self.shortcut_conv(x))
        return jax.nn.relu(h + shortcut)


class CifarResNet(nnx.Module):
    """A ResNet for small images: 3x3 stem, stages of basic blocks, global pool, head.

    The first stage keeps the resolution; every later stage halves it and changes
    the width to its entry of `stage_widths`.

    Args:
      stage_widths: channels of each stage, e.g. `(16, 32, 64)`.
      blocks_per_stage: basic blocks in each stage, e.g. `(3, 3, 3)`.
      num_classes: outputs of `head`.
      in_channels: input channels (3 for CIFAR).
      rngs: supplies the `params` key.

    Input `[B, H, W, in_channels]`; output logits `[B, num_classes]`;
    `features` gives `[B, stage_widths[-1]]`.
    """

    def __init__(
        self,
        stage_widths: Sequence[int],
        blocks_per_stage: Sequence[int],
        num_classes: int = 10,
        in_channels: int = 3,
        *,
        rngs: nnx.Rngs,
    ):
        self.stem_conv = Conv2d(in_channels, stage_widths[0], 3, use_bias=False, rngs=rngs)
        self.stem_bn = _batch_norm(stage_widths[0], rngs)
        blocks = []
        width = stage_widths[0]
        for stage, (stage_width, num_blocks) in enumerate(zip(stage_widths, blocks_per_stage)):
            for index in range(num_blocks):
                strides = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(width, stage_width, strides=strides, rngs=rngs))
                width = stage_width
        self.blocks = nnx.List(blocks)
        self.head = nnx.Linear(width, num_classes, rngs=rngs)

    def features(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """`[B, H, W, C] -> [B, stage_widths[-1]]`, globally average-pooled."""
        h = jax.nn.relu(self.stem_bn(self.stem_conv(x)))
        for block in self.blocks:
            h = block(h)
        return global_avg_pool(h)

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """`[B, H, W, C] -> [B, num_classes]` logits."""
        return self.head(self.features(x, rngs=rngs))


class ResNet20(CifarResNet):
    """ResNet-20 for CIFAR: 3 stages x 3 basic blocks, widths 16/32/64 (~0.27M params)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, *, rngs: nnx.Rngs):
        super().__init__((16, 32, 64), (3, 3, 3), num_classes, in_channels, rngs=rngs)


class ResNet18(CifarResNet):
    """ResNet-18 style for 32x32 input: 3x3 stem, no max-pool, 4 stages x 2 blocks,
    widths 64/128/256/512 (~11.2M params)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, *, rngs: nnx.Rngs):
        super().__init__(
            (64, 128, 256, 512), (2, 2, 2, 2), num_classes, in_channels, rngs=rngs
        )
