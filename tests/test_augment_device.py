"""Tests for actionclip_jax.augment: on-device colour jitter, grayscale and normalisation."""

import colorsys
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from actionclip_jax import augment as A

LUMA = np.array([0.299, 0.587, 0.114])


def np_luma(x):
    return (x @ LUMA)[..., None]


def np_brightness(x, f):
    return np.clip(f * x, 0, 1)


def np_contrast(x, f):
    mean = np_luma(x).mean(axis=(-3, -2, -1), keepdims=True)
    return np.clip(f * x + (1 - f) * mean, 0, 1)


def np_saturation(x, f):
    return np.clip(f * x + (1 - f) * np_luma(x), 0, 1)


def np_hue(x, shift):
    flat = x.reshape(-1, 3).astype(np.float64)
    out = []
    for r, g, b in flat:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        out.append(colorsys.hsv_to_rgb((h + shift) % 1.0, s, v))
    return np.array(out).reshape(x.shape)


NP_OPS = {A.BRIGHTNESS: np_brightness, A.CONTRAST: np_contrast, A.SATURATION: np_saturation}


def np_jitter(x, order, factors):
    for op in order:
        x = np_hue(x, factors[op]) if op == A.HUE else NP_OPS[op](x, factors[op])
    return x


@pytest.fixture(scope="module")
def img():
    # Random colours plus the awkward cases: greys, black, white, pure primaries and ties.
    rng = np.random.default_rng(0)
    special = np.array(
        [
            [0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1],
            [1, 1, 0], [0, 1, 1], [1, 0, 1], [0.2, 0.7, 0.7], [0.7, 0.7, 0.2], [0.7, 0.2, 0.7],
        ]
    )  # fmt: skip
    pixels = np.concatenate([special, rng.random((6 * 8 - len(special), 3))])
    return pixels.reshape(6, 8, 3).astype(np.float32)  # [H, W, 3]


def test_grayscale_equal_channels_with_luma_weights(img):
    out = np.asarray(A.grayscale(jnp.asarray(img)))
    assert out.shape == img.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, np.broadcast_to(np_luma(img), img.shape), atol=1e-6)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


@pytest.mark.parametrize("factor", [0.0, 0.6, 1.0, 1.4, 2.5])
def test_blend_ops_match_numpy(img, factor):
    x = jnp.asarray(img)
    np.testing.assert_allclose(
        A.adjust_brightness(x, factor), np_brightness(img, factor), atol=1e-6
    )
    np.testing.assert_allclose(A.adjust_contrast(x, factor), np_contrast(img, factor), atol=1e-6)
    np.testing.assert_allclose(
        A.adjust_saturation(x, factor), np_saturation(img, factor), atol=1e-6
    )


def test_contrast_mean_is_per_frame(img):
    clip = np.stack([img, img * 0.3])  # [2, H, W, 3]: different means
    out = A.adjust_contrast(jnp.asarray(clip), 0.5)
    np.testing.assert_allclose(out[1], np_contrast(clip[1], 0.5), atol=1e-6)


@pytest.mark.parametrize("shift", [0.0, 0.1, -0.1, 0.37, -0.5, 0.5, 0.93, 1.6])
def test_hue_matches_colorsys(img, shift):
    out = np.asarray(A.adjust_hue(jnp.asarray(img), shift))
    np.testing.assert_allclose(out, np_hue(img, shift), atol=2e-6)
    if shift == 0:
        np.testing.assert_allclose(out, img, atol=1e-6)


def test_hsv_round_trip(img):
    np.testing.assert_allclose(A.hsv_to_rgb(A.rgb_to_hsv(jnp.asarray(img))), img, atol=1e-6)


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2), (2, 0, 3, 1)])
def test_apply_color_jitter_in_the_given_order(img, order):
    factors = np.array([1.3, 0.7, 1.2, 0.08], np.float32)
    out = A.apply_color_jitter(jnp.asarray(img), jnp.array(order), jnp.asarray(factors))
    np.testing.assert_allclose(out, np_jitter(img, order, factors), atol=3e-6)
    no_hue = A.apply_color_jitter(
        jnp.asarray(img), jnp.array(order), jnp.asarray(factors), with_hue=False
    )
    np.testing.assert_allclose(
        no_hue, np_jitter(img, [op for op in order if op != A.HUE], factors), atol=2e-6
    )


def test_order_matters(img):
    factors = jnp.array([1.4, 1.4, 0.8, 0.1])
    a = A.apply_color_jitter(jnp.asarray(img), jnp.array([0, 1, 2, 3]), factors)
    b = A.apply_color_jitter(jnp.asarray(img), jnp.array([3, 2, 1, 0]), factors)
    assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-3


def test_sample_jitter_params_ranges_and_orders():
    keys = jax.random.split(jax.random.key(0), 4000)
    order, factors = jax.jit(jax.vmap(A.sample_jitter_params))(keys)
    order, factors = np.asarray(order), np.asarray(factors)
    assert order.dtype == np.int32 and factors.dtype == np.float32
    assert (np.sort(order, axis=1) == np.arange(4)).all()  # permutations
    lo, hi = np.array([0.6, 0.6, 0.8, -0.1]), np.array([1.4, 1.4, 1.2, 0.1])
    assert (factors >= lo - 1e-7).all() and (factors <= hi + 1e-7).all()
    # Uniform: each range well covered, and each of the 24 orders drawn about 1/24 of the time.
    assert (factors.min(0) < lo + 0.01).all() and (factors.max(0) > hi - 0.01).all()
    counts = {p: 0 for p in itertools.permutations(range(4))}
    for row in order:
        counts[tuple(row)] += 1
    p, n = 1 / 24, len(order)
    assert all(abs(c - n * p) < 4.5 * np.sqrt(n * p * (1 - p)) for c in counts.values()), counts


def test_zero_strength_jitter_is_identity(img):
    clip = jnp.asarray(np.stack([img, img[::-1], img * 0.5]))  # [3, H, W, 3]
    out = A.color_jitter(clip, jax.random.key(1), 0.0, 0.0, 0.0, 0.0, per_frame=True)
    np.testing.assert_array_equal(out, clip)


def test_per_clip_factors(img):
    clip = jnp.asarray(np.stack([img] * 4))  # identical frames
    key = jax.random.key(2)
    per_clip = np.asarray(A.color_jitter(clip, key, per_frame=False))
    assert all((per_clip[0] == per_clip[t]).all() for t in (1, 2, 3))
    assert np.abs(per_clip[0] - img).max() > 1e-3
    # Per-clip parameters are one draw of sample_jitter_params with the same key.
    order, factors = A.sample_jitter_params(key)
    np.testing.assert_allclose(per_clip[0], np_jitter(img, np.asarray(order), factors), atol=3e-6)


@pytest.fixture(scope="module")
def rate_run():
    """2000 small colourful clips through the jitted batch augmentation."""
    rng = np.random.default_rng(3)
    video = rng.integers(0, 256, (2000, 3, 2, 2, 3), dtype=np.uint8)
    video[..., 0] = rng.integers(200, 256, video.shape[:-1])  # clearly not grey
    video[..., 2] = rng.integers(0, 50, video.shape[:-1])
    video[:, 1] = video[:, 0]  # so that per-frame jitter factors show as different frames
    # Inside an outer jit, as in the train step (the function is jitted itself too).
    fn = jax.jit(lambda v, k: A.photometric_augment(v, k))
    out = np.asarray(fn(jnp.asarray(video), jax.random.key(4)))
    return video, out


def test_photometric_output(rate_run):
    video, out = rate_run
    assert out.shape == video.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1


def test_photometric_rates_and_per_clip_decisions(rate_run):
    video, out = rate_run
    x = video.astype(np.float32) / 255
    frame_grey = np.abs(out - out[..., :1]).max(axis=(-3, -2, -1)) < 1e-6  # [B, T]
    # Grayscale covers whole clips.
    assert (frame_grey.all(axis=1) == frame_grey.any(axis=1)).all()
    grey = frame_grey[:, 0]
    # Unjittered clips are the input, or its grayscale; jittered ones are far from both.
    plain = np.where(grey[:, None, None, None, None], np.asarray(A.grayscale(x)), x)
    dist = np.abs(out - plain).max(axis=(-4, -3, -2, -1))
    jittered = dist > 1e-5
    assert (dist[~jittered] < 1e-6).all() and (dist[jittered] > 1e-4).all()
    # Per-frame factors (the default): a jittered clip's two identical frames come out
    # different, an untouched clip's stay equal.
    frame_diff = np.abs(out[:, 0] - out[:, 1]).max(axis=(-3, -2, -1))
    assert (frame_diff[jittered] > 1e-4).all() and (frame_diff[~jittered] == 0).all()
    n = len(out)
    for rate, p in ((jittered.sum(), 0.8), (grey.sum(), 0.2)):
        assert abs(rate - n * p) < 4.5 * np.sqrt(n * p * (1 - p)), (rate, p)
    # Independent decisions: all four combinations occur.
    assert len({(a, b) for a, b in zip(jittered, grey)}) == 4


def test_photometric_wants_uint8():
    with pytest.raises(ValueError):
        A.photometric_augment(jnp.zeros((1, 1, 2, 2, 3), jnp.float32), jax.random.key(6))


def test_normalize_and_preprocess():
    rng = np.random.default_rng(7)
    video = rng.integers(0, 256, (2, 3, 4, 5, 3), dtype=np.uint8)
    mean, std = np.array(A.CLIP_MEAN), np.array(A.CLIP_STD)
    x = video / 255.0
    np.testing.assert_allclose(
        jax.jit(A.normalize)(jnp.asarray(x, jnp.float32)), (x - mean) / std, atol=1e-5
    )
    out = jax.jit(A.preprocess_uint8)(jnp.asarray(video))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, (x - mean) / std, atol=1e-5)
    assert A.CLIP_MEAN == (0.48145466, 0.4578275, 0.40821073)
    assert A.CLIP_STD == (0.26862954, 0.26130258, 0.27577711)
