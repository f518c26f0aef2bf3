"""Residual networks (He et al., 2016) with BatchNorm: for CIFAR, ResNet-20 and a
ResNet-18-style variant with a 3x3 stem for 32x32 input; for ImageNet,
ResNet-18/34/50 laid out exactly as torchvision's (7x7 stride-2 stem, 3x3 max-pool,
bottlenecks striding in their 3x3 convolution as torchvision's "v1.5"), so that
`jaxdl.pretrained.torchvision_resnet` can load torchvision's weights into them.

BatchNorm statistics are `nnx.BatchStat`s: updated in training, used and left
unchanged in evaluation, when the trainer sets `use_running_average=True` with
`nnx.view`. Like the other CNNs, each network exposes `features(x) -> [B, D]`
(after global average pooling) and its classifier `head` (an `nnx.Linear`).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
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


def _shortcut(in_features: int, out_features: int, strides: int, padding, rngs: nnx.Rngs):
    """`(conv, bn)` of a strided 1x1 projection when a block changes resolution or
    width, else `(None, None)` (the identity)."""
    if strides == 1 and in_features == out_features:
        return None, None
    conv = Conv2d(in_features, out_features, 1, strides=strides, padding=padding,
                  use_bias=False, rngs=rngs)
    return conv, _batch_norm(out_features, rngs)


def _through_shortcut(conv, bn, x: jax.Array) -> jax.Array:
    """`x` through the projection `(conv, bn)`, or `x` itself when there is none."""
    return x if conv is None else bn(conv(x))


class BasicBlock(nnx.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection.

    When the block changes resolution or width, the shortcut is a strided 1x1
    convolution with BatchNorm (He et al.'s option B), otherwise the identity.

    Args:
      in_features: input channels.
      out_features: output channels.
      strides: stride of the first convolution (2 halves H and W).
      padding: of the 3x3 convolutions. `'SAME'` pads a strided one only at the
        bottom/right; torchvision pads 1 on every side, which `padding=1` matches.
      rngs: supplies the `params` key.

    Input `[B, H, W, in_features]`; output `[B, H/strides, W/strides, out_features]`.
    """

    def __init__(self, in_features: int, out_features: int, *, strides: int = 1,
                 padding: str | int = "SAME", rngs: nnx.Rngs):
        # Convolutions before BatchNorm need no bias: BatchNorm's shift replaces it.
        self.conv1 = Conv2d(
            in_features, out_features, 3, strides=strides, padding=padding, use_bias=False,
            rngs=rngs,
        )
        self.bn1 = _batch_norm(out_features, rngs)
        self.conv2 = Conv2d(out_features, out_features, 3, padding=padding, use_bias=False,
                            rngs=rngs)
        self.bn2 = _batch_norm(out_features, rngs)
        self.shortcut_conv, self.shortcut_bn = _shortcut(in_features, out_features, strides,
                                                         "SAME", rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """`[B, H, W, Cin] -> [B, H', W', Cout]`."""
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return jax.nn.relu(h + _through_shortcut(self.shortcut_conv, self.shortcut_bn, x))


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


class Bottleneck(nnx.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), each with BatchNorm, and a residual connection.

    As torchvision's ResNet-50 ("v1.5"), the stride sits on the 3x3 convolution;
    the shortcut is a strided 1x1 convolution with BatchNorm when the block changes
    resolution or width, otherwise the identity.

    Args:
      in_features: input channels.
      width: channels of the 3x3 convolution; the block outputs `4 * width`.
      strides: stride of the 3x3 convolution.
      rngs: supplies the `params` key.

    Input `[B, H, W, in_features]`; output `[B, H/strides, W/strides, 4 * width]`.
    """

    expansion = 4

    def __init__(self, in_features: int, width: int, *, strides: int = 1, rngs: nnx.Rngs):
        out_features = width * self.expansion
        self.conv1 = Conv2d(in_features, width, 1, padding=0, use_bias=False, rngs=rngs)
        self.bn1 = _batch_norm(width, rngs)
        self.conv2 = Conv2d(width, width, 3, strides=strides, padding=1, use_bias=False,
                            rngs=rngs)
        self.bn2 = _batch_norm(width, rngs)
        self.conv3 = Conv2d(width, out_features, 1, padding=0, use_bias=False, rngs=rngs)
        self.bn3 = _batch_norm(out_features, rngs)
        self.shortcut_conv, self.shortcut_bn = _shortcut(in_features, out_features, strides, 0,
                                                         rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """`[B, H, W, Cin] -> [B, H', W', 4 * width]`."""
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        h = jax.nn.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return jax.nn.relu(h + _through_shortcut(self.shortcut_conv, self.shortcut_bn, x))


def _stem_max_pool(x: jax.Array) -> jax.Array:
    """torchvision's `MaxPool2d(3, stride=2, padding=1)`: pads with -inf, so the
    padding never wins. `[B, H, W, C] -> [B, ceil(H/2), ceil(W/2), C]`."""
    return jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
        ((0, 0), (1, 1), (1, 1), (0, 0)),
    )


class ImageNetResNet(nnx.Module):
    """torchvision's ResNet: 7x7 stride-2 stem, 3x3 stride-2 max-pool, four stages
    of widths 64/128/256/512 (the first keeps the resolution, each later one halves
    it), global average pool, head.

    Parameter names follow `CifarResNet` (`stem_conv`, `stem_bn`, `blocks/<k>/...`,
    `head`); `jaxdl.pretrained.torchvision_resnet` maps torchvision's names onto them.

    Args:
      blocks_per_stage: blocks in each of the four stages, e.g. `(2, 2, 2, 2)`.
      bottleneck: `Bottleneck` blocks (ResNet-50 and deeper), else `BasicBlock`s.
      num_classes: outputs of `head` (1000 for ImageNet).
      in_channels: input channels.
      rngs: supplies the `params` key.

    Input `[B, H, W, in_channels]`; output logits `[B, num_classes]`; `features`
    gives `[B, 512]` (basic) or `[B, 2048]` (bottleneck).
    """

    def __init__(self, blocks_per_stage: Sequence[int], *, bottleneck: bool,
                 num_classes: int = 1000, in_channels: int = 3, rngs: nnx.Rngs):
        self.stem_conv = Conv2d(in_channels, 64, 7, strides=2, padding=3, use_bias=False,
                                rngs=rngs)
        self.stem_bn = _batch_norm(64, rngs)
        blocks = []
        width = 64
        for stage, num_blocks in enumerate(blocks_per_stage):
            stage_width = 64 * 2**stage
            for index in range(num_blocks):
                strides = 2 if stage > 0 and index == 0 else 1
                if bottleneck:
                    blocks.append(Bottleneck(width, stage_width, strides=strides, rngs=rngs))
                    width = stage_width * Bottleneck.expansion
                else:
                    blocks.append(BasicBlock(width, stage_width, strides=strides, padding=1,
                                             rngs=rngs))
                    width = stage_width
        self.blocks = nnx.List(blocks)
        self.head = nnx.Linear(width, num_classes, rngs=rngs)

    def features(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """`[B, H, W, C] -> [B, D]`, globally average-pooled."""
        h = _stem_max_pool(jax.nn.relu(self.stem_bn(self.stem_conv(x))))
        for block in self.blocks:
            h = block(h)
        return global_avg_pool(h)

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """`[B, H, W, C] -> [B, num_classes]` logits."""
        return self.head(self.features(x, rngs=rngs))


def resnet18_imagenet(num_classes: int = 1000, in_channels: int = 3, *,
                      rngs: nnx.Rngs) -> ImageNetResNet:
    """torchvision's `resnet18`: basic blocks (2, 2, 2, 2), ~11.7M parameters."""
    return ImageNetResNet((2, 2, 2, 2), bottleneck=False, num_classes=num_classes,
                          in_channels=in_channels, rngs=rngs)


def resnet34_imagenet(num_classes: int = 1000, in_channels: int = 3, *,
                      rngs: nnx.Rngs) -> ImageNetResNet:
    """torchvision's `resnet34`: basic blocks (3, 4, 6, 3), ~21.8M parameters."""
    return ImageNetResNet((3, 4, 6, 3), bottleneck=False, num_classes=num_classes,
                          in_channels=in_channels, rngs=rngs)


def resnet50_imagenet(num_classes: int = 1000, in_channels: int = 3, *,
                      rngs: nnx.Rngs) -> ImageNetResNet:
    """torchvision's `resnet50`: bottlenecks (3, 4, 6, 3), ~25.6M parameters."""
    return ImageNetResNet((3, 4, 6, 3), bottleneck=True, num_classes=num_classes,
                          in_channels=in_channels, rngs=rngs)


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
