"""Image augmentation on the device: pure, jit-compatible functions of a PRNG key.

Each function's output is a pure function of `(key, images)`. The trainer derives
the key from `fold_in(seed_key, step)`, so the augmented batch of step `s` is the
same whether a run went straight through or was resumed, and exact resume holds.

All images are NHWC float arrays.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxdl.errors import ConfigError

# Per-channel statistics of the CIFAR-10 training set, for images scaled to [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def random_crop(key: jax.Array, images: jax.Array, *, padding: int) -> jax.Array:
    """Zero-pads each image by `padding` on every side and crops back to H x W
    at an independent, uniformly random offset per image.

    Args:
      key: PRNG key.
      images: `[B, H, W, C]`.
      padding: pixels of zeros added on each side (a static Python int).

    Returns:
      `[B, H, W, C]`, each image shifted by up to `padding` pixels in each axis.
    """
    if not isinstance(padding, int) or padding < 0:
        raise ConfigError(f"random_crop padding={padding!r}: expected an int >= 0")
    if padding == 0:
        return images
    batch, height, width, channels = images.shape
    padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    # Offsets in [0, 2 * padding]: offset `padding` is the unshifted image.
    offsets = jax.random.randint(key, (batch, 2), 0, 2 * padding + 1)

    def crop_one(image: jax.Array, offset: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(
            image, (offset[0], offset[1], 0), (height, width, channels)
        )

    return jax.vmap(crop_one)(padded, offsets)


def random_flip(key: jax.Array, images: jax.Array) -> jax.Array:
    """Mirrors each image left-right independently with probability 0.5.

    Args:
      key: PRNG key.
      images: `[B, H, W, C]`.

    Returns:
      `[B, H, W, C]`. Applying it twice with the same key restores `images`.
    """
    flip = jax.random.bernoulli(key, 0.5, (images.shape[0],))
    return jnp.where(flip[:, None, None, None], images[:, :, ::-1, :], images)


def normalize(
    images: jax.Array, mean: Sequence[float] | jax.Array, std: Sequence[float] | jax.Array
) -> jax.Array:
    """Per-channel standardisation `(images - mean) / std`.

    Args:
      images: `[B, H, W, C]`.
      mean: `[C]` channel means.
      std: `[C]` channel standard deviations (all > 0).

    Returns:
      `[B, H, W, C]` float array.
    """
    mean = jnp.asarray(mean, dtype=images.dtype)
    std = jnp.asarray(std, dtype=images.dtype)
    channels = images.shape[-1]
    if mean.shape != (channels,) or std.shape != (channels,):
        raise ConfigError(
            f"normalize: mean shape {mean.shape} and std shape {std.shape} must both "
            f"be ({channels},), one value per channel of images {images.shape}"
        )
    return (images - mean) / std


def augment(
    key: jax.Array, images: jax.Array, *, crop_padding: int = 4, flip: bool = True
) -> jax.Array:
    """The standard CIFAR training augmentation: padded random crop, then
    horizontal flip. Deterministic for a given key.

    Args:
      key: PRNG key (e.g. `fold_in(augment_key, step)`).
      images: `[B, H, W, C]`.
      crop_padding: padding of `random_crop`; 0 disables cropping.
      flip: whether to apply `random_flip`.

    Returns:
      `[B, H, W, C]` augmented images.
    """
    crop_key, flip_key = jax.random.split(key)
    images = random_crop(crop_key, images, padding=crop_padding)
    if flip:
        images = random_flip(flip_key, images)
    return images
