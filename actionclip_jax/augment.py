"""On-device photometric augmentation and normalisation of uint8 video batches.

The host pipeline (``data_pipeline``) delivers geometrically augmented uint8 clips; the
jitted train step finishes the original's train transform (ActionCLIP section 5.5)::

    x = photometric_augment(video_uint8, key)  # [B, T, H, W, 3] float32 in [0, 1]
    x = normalize(x)

and the eval step uses ``preprocess_uint8(video_uint8)``. Both normalise with CLIP's mean and std,
or ImageNet's for ViFi-CLIP (``pixel_norm``, `PIXEL_NORMS`).

Colour jitter follows torchvision's ``ColorJitter`` on float images: brightness, contrast,
saturation and hue in a random order, each clamped to [0, 1]. The original ran it on PIL
images, where every op also rounds to uint8 and the contrast mean is a rounded integer;
those roundings (at most half a grey level each) are not reproduced.

The public functions are jitted (so eager calls are fast) and can be called inside a
jitted train step, where they are inlined. Hyper-parameters (probabilities, jitter
strengths, ``per_frame``, ``with_hue``) are static arguments: Python values, one
compilation per distinct value.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# ViFi-CLIP normalises 0-255 pixels with ImageNet's (123.675, 116.28, 103.53) / (58.395, 57.12,
# 57.375): the same map as these on [0, 1] pixels (each divided by 255).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# `data.pixel_norm` → (mean, std) on [0, 1] pixels.
PIXEL_NORMS = {"clip": (CLIP_MEAN, CLIP_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}

# ITU-R 601 luma, the weights of PIL's convert("L") that the original's grayscale and
# PIL colour ops use.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

# Op indices in the jitter order and in the factor vector of `sample_jitter_params`.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3


# ---------------------------------------------------------------------------------------
# Single ops on float images in [0, 1], [..., H, W, 3]
# ---------------------------------------------------------------------------------------


def _luma(img: jax.Array) -> jax.Array:
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return (LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b)[..., None]


@jax.jit
def grayscale(frames: jax.Array) -> jax.Array:
    """3-channel grayscale: every channel becomes ``0.299 R + 0.587 G + 0.114 B``.

    Args:
      frames: ``[..., 3]`` float.

    Returns:
      Same shape and dtype.
    """
    return jnp.broadcast_to(_luma(frames), frames.shape).astype(frames.dtype)


def _blend(img: jax.Array, ref: jax.Array, factor: jax.Array) -> jax.Array:
    # torchvision's _blend for float images: factor 1 is exactly the input, and the clamp
    # keeps values in range when factor > 1 extrapolates away from `ref`.
    return jnp.clip(factor * img + (1.0 - factor) * ref, 0.0, 1.0)


@jax.jit
def adjust_brightness(img: jax.Array, factor: jax.Array) -> jax.Array:
    """Blends ``[..., H, W, 3]`` with black: ``clip(factor * img)``."""
    return _blend(img, jnp.zeros((), img.dtype), factor)


@jax.jit
def adjust_contrast(img: jax.Array, factor: jax.Array) -> jax.Array:
    """Blends ``[..., H, W, 3]`` with the mean grey level of each image (over H and W)."""
    mean = jnp.mean(_luma(img), axis=(-3, -2, -1), keepdims=True)  # [..., 1, 1, 1]
    return _blend(img, mean, factor)


@jax.jit
def adjust_saturation(img: jax.Array, factor: jax.Array) -> jax.Array:
    """Blends ``[..., H, W, 3]`` with its own grayscale image (factor 0 gives grey)."""
    return _blend(img, _luma(img), factor)


@jax.jit
def rgb_to_hsv(img: jax.Array) -> jax.Array:
    """``[..., 3]`` RGB in [0, 1] to HSV, each in [0, 1] (hue in turns)."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    v = jnp.max(img, axis=-1)
    chroma = v - jnp.min(img, axis=-1)
    grey = chroma == 0
    # Safe denominators: grey pixels get hue 0 and saturation 0 (as colorsys does).
    safe_chroma = jnp.where(grey, 1.0, chroma)
    s = jnp.where(grey, 0.0, chroma / jnp.where(v == 0, 1.0, v))
    # Hue in sixths of a turn from whichever channel is the maximum (red wins ties, then
    # green, the usual convention).
    h_r = (g - b) / safe_chroma
    h_g = 2.0 + (b - r) / safe_chroma
    h_b = 4.0 + (r - g) / safe_chroma
    h6 = jnp.where(v == r, h_r, jnp.where(v == g, h_g, h_b))
    h = jnp.where(grey, 0.0, jnp.mod(h6 / 6.0, 1.0))
    return jnp.stack([h, s, v], axis=-1)


@jax.jit
def hsv_to_rgb(hsv: jax.Array) -> jax.Array:
    """Inverse of `rgb_to_hsv`: ``[..., 3]`` HSV in [0, 1] to RGB in [0, 1]."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    h6 = jnp.mod(h, 1.0) * 6.0
    sector = jnp.floor(h6)
    frac = h6 - sector
    sector = sector.astype(jnp.int32) % 6
    p = v * (1.0 - s)
    q = v * (1.0 - s * frac)
    t = v * (1.0 - s * (1.0 - frac))
    # For each of the six sectors, which of (v, q, p, t) goes to R, G and B.
    r = jnp.select([sector == k for k in range(6)], [v, q, p, p, t, v])
    g = jnp.select([sector == k for k in range(6)], [t, v, v, q, p, p])
    b = jnp.select([sector == k for k in range(6)], [p, p, t, v, v, q])
    return jnp.clip(jnp.stack([r, g, b], axis=-1), 0.0, 1.0)


@jax.jit
def adjust_hue(img: jax.Array, shift: jax.Array) -> jax.Array:
    """Rotates the hue of ``[..., 3]`` RGB by ``shift`` turns (any real; wraps modulo 1)."""
    hsv = rgb_to_hsv(img)
    hsv = hsv.at[..., 0].set(jnp.mod(hsv[..., 0] + shift, 1.0))
    return hsv_to_rgb(hsv).astype(img.dtype)


# ---------------------------------------------------------------------------------------
# Colour jitter
# ---------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("brightness", "contrast", "saturation", "hue"))
def sample_jitter_params(
    key: jax.Array,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.2,
    hue: float = 0.1,
) -> tuple[jax.Array, jax.Array]:
    """Draws one set of ``ColorJitter`` parameters, as torchvision's ``get_params``.

    Returns:
      ``(order, factors)``: ``order`` int32 ``[4]``, a uniform random permutation of the
      op indices (`BRIGHTNESS`, `CONTRAST`, `SATURATION`, `HUE`); ``factors`` float32
      ``[4]`` indexed by op: brightness in ``U[max(0, 1 - brightness), 1 + brightness]``,
      contrast and saturation likewise, hue shift in ``U[-hue, hue]``. A strength of 0
      gives the identity factor (1, or a hue shift of 0) exactly.
    """
    k_order, k_factors = jax.random.split(key)
    order = jax.random.permutation(k_order, 4).astype(jnp.int32)
    lo = jnp.array(
        [max(0.0, 1.0 - brightness), max(0.0, 1.0 - contrast), max(0.0, 1.0 - saturation), -hue],
        jnp.float32,
    )
    hi = jnp.array([1.0 + brightness, 1.0 + contrast, 1.0 + saturation, hue], jnp.float32)
    factors = jax.random.uniform(k_factors, (4,), jnp.float32, lo, hi)
    return order, factors


def _blend_slot(img: jax.Array, op: jax.Array, factors: jax.Array, active: jax.Array) -> jax.Array:
    # One step of the jitter for the three blend ops, chosen by the traced `op`: the
    # reference is black, the mean grey level or the grey image. An inactive slot uses
    # factor 1, which leaves `img` exactly unchanged.
    luma = _luma(img)  # [H, W, 1]
    is_contrast = (op == CONTRAST).astype(img.dtype)
    is_saturation = (op == SATURATION).astype(img.dtype)
    ref = is_saturation * luma + is_contrast * jnp.mean(luma)  # [H, W, 1]
    factor = jnp.where(active, factors[jnp.minimum(op, SATURATION)], 1.0)
    return _blend(img, ref, factor)


@functools.partial(jax.jit, static_argnames=("with_hue",))
def apply_color_jitter(
    img: jax.Array, order: jax.Array, factors: jax.Array, with_hue: bool = True
) -> jax.Array:
    """Applies the four jitter ops to one ``[H, W, 3]`` image in the order ``order``.

    Args:
      img: ``[H, W, 3]`` float in [0, 1].
      order: int ``[4]`` permutation of the op indices (see `sample_jitter_params`).
      factors: float ``[4]`` per-op factors indexed by op.
      with_hue: Static; False skips the hue op (torchvision skips an op whose strength is
        0, and the HSV round trip is not bit-exact).

    Returns:
      ``[H, W, 3]`` float in [0, 1].
    """
    # The three blend ops in their drawn order, hue left out (a stable sort moves it last).
    blend_order = order[jnp.argsort(order == HUE, stable=True)[:3]]
    if not with_hue:
        for slot in range(3):
            img = _blend_slot(img, blend_order[slot], factors, jnp.bool_(True))
        return img
    # The blend ops are cheap, the hue op is not: rather than evaluating all four ops at
    # every step (what a switch becomes under vmap), run the blend ops that come before
    # hue (slots below its position), hue once, then the others.
    hue_position = jnp.argmax(order == HUE)
    for slot in range(3):
        img = _blend_slot(img, blend_order[slot], factors, slot < hue_position)
    img = adjust_hue(img, factors[HUE])
    for slot in range(3):
        img = _blend_slot(img, blend_order[slot], factors, slot >= hue_position)
    return img


@functools.partial(
    jax.jit, static_argnames=("brightness", "contrast", "saturation", "hue", "per_frame")
)
def color_jitter(
    frames: jax.Array,
    key: jax.Array,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.2,
    hue: float = 0.1,
    per_frame: bool = True,
) -> jax.Array:
    """torchvision ``ColorJitter`` on a float clip.

    Args:
      frames: ``[T, H, W, 3]`` float in [0, 1].
      key: PRNG key.
      brightness, contrast, saturation, hue: Jitter strengths (see `sample_jitter_params`).
      per_frame: Draw order and factors independently for every frame (the original,
        which calls ``ColorJitter`` per frame) or once for the clip.

    Returns:
      ``[T, H, W, 3]`` float in [0, 1].
    """
    if hue < 0 or hue > 0.5:
        raise ValueError(f"hue must be in [0, 0.5], got {hue}")

    def sample(k: jax.Array) -> tuple[jax.Array, jax.Array]:
        return sample_jitter_params(k, brightness, contrast, saturation, hue)

    if per_frame:
        order, factors = jax.vmap(sample)(jax.random.split(key, frames.shape[0]))  # [T, 4]
        in_axes = (0, 0, 0)
    else:
        order, factors = sample(key)  # [4]
        in_axes = (0, None, None)

    def apply(img: jax.Array, o: jax.Array, f: jax.Array) -> jax.Array:
        return apply_color_jitter(img, o, f, with_hue=hue > 0)

    return jax.vmap(apply, in_axes=in_axes)(frames, order, factors)


@functools.partial(
    jax.jit,
    static_argnames=(
        "p_jitter",
        "p_gray",
        "per_frame_jitter",
        "brightness",
        "contrast",
        "saturation",
        "hue",
    ),
)
def photometric_augment(
    video: jax.Array,
    key: jax.Array,
    p_jitter: float = 0.8,
    p_gray: float = 0.2,
    per_frame_jitter: bool = True,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.2,
    hue: float = 0.1,
) -> jax.Array:
    """``GroupRandomColorJitter`` then ``GroupRandomGrayscale`` on a uint8 batch.

    For every clip independently: colour jitter (`color_jitter`) with probability
    ``p_jitter``, then grayscale with probability ``p_gray``; both decisions cover all
    frames of the clip.

    Args:
      video: ``[B, T, H, W, 3]`` uint8.
      key: PRNG key.
      p_jitter: Probability of jittering a clip.
      p_gray: Probability of turning a clip grey.
      per_frame_jitter: See ``per_frame`` of `color_jitter`.
      brightness, contrast, saturation, hue: Jitter strengths.

    Returns:
      ``[B, T, H, W, 3]`` float32 in [0, 1] (not normalised; see `normalize`).
    """
    if video.dtype != jnp.uint8:
        raise ValueError(f"expected uint8 video, got {video.dtype}")
    x = video.astype(jnp.float32) / 255.0  # [B, T, H, W, 3]

    def one_clip(clip: jax.Array, clip_key: jax.Array) -> jax.Array:
        k_do_jitter, k_jitter, k_do_gray = jax.random.split(clip_key, 3)
        # Both branches are computed and selected; under vmap a cond would do the same.
        jittered = color_jitter(
            clip, k_jitter, brightness, contrast, saturation, hue, per_frame_jitter
        )
        clip = jnp.where(jax.random.uniform(k_do_jitter) < p_jitter, jittered, clip)
        return jnp.where(jax.random.uniform(k_do_gray) < p_gray, grayscale(clip), clip)

    return jax.vmap(one_clip)(x, jax.random.split(key, x.shape[0]))


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------


def _mean_std(pixel_norm: str):
    if pixel_norm not in PIXEL_NORMS:
        raise ValueError(f"pixel_norm must be one of {tuple(PIXEL_NORMS)}, got {pixel_norm!r}")
    mean, std = PIXEL_NORMS[pixel_norm]
    return jnp.asarray(np.array(mean, np.float32)), jnp.asarray(np.array(std, np.float32))


@functools.partial(jax.jit, static_argnames=("pixel_norm",))
def normalize(video: jax.Array, pixel_norm: str = "clip") -> jax.Array:
    """``(x - mean) / std`` per channel on ``[..., 3]`` float in [0, 1], with the mean and std of
    `PIXEL_NORMS[pixel_norm]` (CLIP's by default)."""
    mean, std = _mean_std(pixel_norm)
    return (video - mean) / std


@functools.partial(jax.jit, static_argnames=("pixel_norm",))
def preprocess_uint8(video: jax.Array, pixel_norm: str = "clip") -> jax.Array:
    """The eval path: uint8 ``[..., 3]`` to float32 ``/ 255``, then `normalize`."""
    return normalize(jnp.asarray(video).astype(jnp.float32) / 255.0, pixel_norm)


# ---------------------------------------------------------------------------------------
# The train step's input
# ---------------------------------------------------------------------------------------


def per_sample_keys(key: jax.Array, index: jax.Array) -> jax.Array:
    """One key per sample, folded from its dataset index: a sample's draws do not depend on
    where it sits in the global batch, so any process or device layout sees the same ones."""
    return jax.vmap(jax.random.fold_in, (None, 0))(key, index)


def train_video(
    video: jax.Array,
    keys: jax.Array,
    *,
    p_jitter: float,
    p_gray: float,
    per_frame_jitter: bool,
    dtype=jnp.float32,
    pixel_norm: str = "clip",
) -> jax.Array:
    """Photometric augmentation (one key per clip, `per_sample_keys`) and normalisation
    (`PIXEL_NORMS[pixel_norm]`) of uint8 ``[B, T, S, S, 3]``, cast to the compute ``dtype``."""
    if p_jitter == 0 and p_gray == 0:  # nothing to draw: skip compiling it
        return preprocess_uint8(video, pixel_norm).astype(dtype)

    def one(clip, key):
        return photometric_augment(
            clip[None], key, p_jitter=p_jitter, p_gray=p_gray, per_frame_jitter=per_frame_jitter
        )[0]

    return normalize(jax.vmap(one)(video, keys), pixel_norm).astype(dtype)


# ---------------------------------------------------------------------------------------
# Mixup and CutMix over a batch (ViFi-CLIP's video blending)
# ---------------------------------------------------------------------------------------


def mix_videos(
    video: jax.Array,
    targets: jax.Array,
    key: jax.Array,
    *,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    switch_prob: float = 0.5,
):
    """Mixup or CutMix of a batch of clips and their soft targets (one draw for the batch).

    As X-CLIP's `CutmixMixupBlending`, which ViFi-CLIP trains with: with probability
    `switch_prob` CutMix, else Mixup (only the one whose alpha is > 0 when the other is 0); the
    partner of sample i is sample `perm[i]` of a random permutation; λ ~ Beta(α, α). Mixup blends
    whole clips, `λ·x + (1 − λ)·x[perm]`. CutMix pastes one box of the partner into every frame:
    sides `⌊side·√(1 − λ)⌋`, centre uniform over the frame, clipped at the border; λ becomes the
    share of the frame left uncovered. Targets mix with the same λ.

    Args:
      video: `[B, T, H, W, 3]` (normalised or not: both blends are affine).
      targets: `[B, C]` float (e.g. `losses.smooth_labels`).
      key: PRNG key.
      mixup_alpha, cutmix_alpha: Beta parameters; 0 turns one off (not both).
      switch_prob: probability of CutMix when both are on.
    Returns:
      `(video, targets)`, the same shapes and dtypes.
    """
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        raise ValueError("mix_videos needs mixup_alpha > 0 or cutmix_alpha > 0")
    b, _, h, w, _ = video.shape
    k_switch, k_perm, k_mix, k_cut, k_cx, k_cy = jax.random.split(key, 6)
    perm = jax.random.permutation(k_perm, b)
    partner = video[perm]
    if mixup_alpha > 0 and cutmix_alpha > 0:
        use_cutmix = jax.random.uniform(k_switch) < switch_prob
    else:
        use_cutmix = jnp.bool_(cutmix_alpha > 0)
    # A blend that is off keeps λ = 1 (its branch is never selected).
    one = jnp.float32(1.0)
    lam_mix = jax.random.beta(k_mix, mixup_alpha, mixup_alpha) if mixup_alpha > 0 else one
    lam_cut = jax.random.beta(k_cut, cutmix_alpha, cutmix_alpha) if cutmix_alpha > 0 else one
    ratio = jnp.sqrt(1.0 - lam_cut)
    cut_w = jnp.floor(w * ratio).astype(jnp.int32)
    cut_h = jnp.floor(h * ratio).astype(jnp.int32)
    cx = jax.random.randint(k_cx, (), 0, w)
    cy = jax.random.randint(k_cy, (), 0, h)
    x1, x2 = jnp.clip(cx - cut_w // 2, 0, w), jnp.clip(cx + cut_w // 2, 0, w)
    y1, y2 = jnp.clip(cy - cut_h // 2, 0, h), jnp.clip(cy + cut_h // 2, 0, h)
    rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    box = (rows >= y1) & (rows < y2) & (cols >= x1) & (cols < x2)  # [H, W]
    lam_box = 1.0 - ((x2 - x1) * (y2 - y1)).astype(jnp.float32) / (h * w)
    cut = jnp.where(box[None, None, :, :, None], partner, video)
    lam_m = lam_mix.astype(video.dtype)
    mixed = lam_m * video + (1 - lam_m) * partner
    lam = jnp.where(use_cutmix, lam_box, lam_mix)
    video = jnp.where(use_cutmix, cut, mixed)
    return video, lam * targets + (1.0 - lam) * targets[perm]
