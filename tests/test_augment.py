"""On-device augmentation: deterministic per key, shape-preserving, exact."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.data.augment import augment, normalize, random_crop, random_flip
from jaxdl.errors import ConfigError

IMAGES = jnp.asarray(np.random.default_rng(0).random((16, 8, 8, 3), dtype=np.float32))


def test_augment_same_key_bitwise_equal_different_key_differs():
    step_key = jax.random.fold_in(jax.random.key(0), 7)  # as the trainer derives it
    first = jax.jit(augment)(step_key, IMAGES)
    second = jax.jit(augment)(jax.random.fold_in(jax.random.key(0), 7), IMAGES)
    other = jax.jit(augment)(jax.random.fold_in(jax.random.key(0), 8), IMAGES)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    assert first.shape == IMAGES.shape
    assert not np.array_equal(np.asarray(first), np.asarray(other))


def test_random_crop_keeps_shape_and_shifts_with_zero_fill():
    images = jnp.ones((32, 6, 6, 1))
    cropped = jax.jit(random_crop, static_argnames="padding")(jax.random.key(1), images, padding=2)
    assert cropped.shape == (32, 6, 6, 1)
    values = set(np.unique(np.asarray(cropped)).tolist())
    assert values == {0.0, 1.0}  # the zero padding shows up in some crops
    # Every crop is the image shifted by at most 2 pixels: at least a 4x4 block of ones.
    ones_per_image = np.asarray(cropped).sum(axis=(1, 2, 3))
    assert ones_per_image.min() >= 16 and ones_per_image.max() == 36


def test_random_crop_is_a_pure_shift_of_the_padded_image():
    image = jnp.arange(25.0).reshape(1, 5, 5, 1)
    cropped = np.asarray(random_crop(jax.random.key(3), image, padding=1))[0, :, :, 0]
    padded = np.pad(np.arange(25.0).reshape(5, 5), 1)
    matches = [(dy, dx) for dy in range(3) for dx in range(3)
               if np.array_equal(padded[dy:dy + 5, dx:dx + 5], cropped)]
    assert len(matches) == 1


def test_random_crop_padding_zero_is_identity_and_negative_is_rejected():
    np.testing.assert_array_equal(np.asarray(random_crop(jax.random.key(0), IMAGES, padding=0)), np.asarray(IMAGES))
    with pytest.raises(ConfigError, match=r"random_crop padding=-1: expected an int >= 0"):
        random_crop(jax.random.key(0), IMAGES, padding=-1)


def test_random_flip_twice_with_same_key_is_identity_and_flips_some():
    key = jax.random.key(5)
    once = random_flip(key, IMAGES)
    twice = random_flip(key, once)
    np.testing.assert_array_equal(np.asarray(twice), np.asarray(IMAGES))
    flipped = [np.array_equal(np.asarray(once[i]), np.asarray(IMAGES[i, :, ::-1])) for i in range(16)]
    unchanged = [np.array_equal(np.asarray(once[i]), np.asarray(IMAGES[i])) for i in range(16)]
    assert all(f or u for f, u in zip(flipped, unchanged))
    assert 0 < sum(flipped) < 16


def test_normalize_per_channel():
    images = jnp.stack([jnp.full((2, 2), 0.5), jnp.full((2, 2), 1.0), jnp.full((2, 2), 0.0)], axis=-1)[None]
    out = normalize(images, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))
    np.testing.assert_array_equal(np.asarray(out[0, 0, 0]), np.array([0.0, 2.0, -1.0], np.float32))
    with pytest.raises(ConfigError, match=r"must both be \(3,\), one value per channel"):
        normalize(images, mean=(0.5,), std=(0.5,))
