"""Geometric transforms on clips: uint8 ``[T, H, W, 3]`` arrays, one geometry per clip.

Every frame of a clip gets the same resize and the same crop window, as in ActionCLIP's
``Group*`` transforms. The test-time resize goes through PIL so that the pixels match the
original (torchvision transforms on PIL images call PIL themselves). The training crop's
resize goes through OpenCV, eight times faster than PIL: for the usual enlargements of a
crop to 224 its bilinear pixels are PIL's within one level; for a crop larger than 224
(256 -> 224) it does not antialias as PIL does (see `train_geometric`, and
``docs/deviations.md``).

Test-time path of the original (``GroupScale(256)`` then ``GroupCenterCrop(224)``)::

    clip = center_crop(resize_short_side(frames, 256), 224)

Training path of the original (ActionCLIP section 5.5), host-side geometric part::

    rng = np.random.default_rng(seed)
    clip = rand_augment_clip(frames, rng, n=2, m=9)  # K400 only; full-size frames
    clip = train_geometric(clip, rng, 224, flip=True)  # multi-scale crop, resize, flip

Colour jitter, grayscale and normalisation run on the device afterwards
(``actionclip_jax.augment``). All randomness here comes from the ``np.random.Generator``
passed in, so a clip's augmentation is fixed by the seed.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

# One thread per resize: a clip's eight small resizes gain nothing from OpenCV's thread
# pool, and data loading runs in parallel over clips (grain threads and processes).
cv2.setNumThreads(1)


def _check_clip(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", None)
        raise ValueError(f"expected frames of shape [T, H, W, 3], got {shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")


# ---------------------------------------------------------------------------------------
# Test-time transforms
# ---------------------------------------------------------------------------------------


def resized_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Output ``(height, width)`` of `resize_short_side`, torchvision's rule.

    The shorter side becomes ``size`` and the longer side ``int(size * long / short)``:
    true division, then truncation (torchvision >= 0.9, ``_compute_resized_output_size``;
    e.g. 320x240 -> 341x256, not 342). A square image becomes ``size x size``.
    """
    if height <= 0 or width <= 0 or size <= 0:
        raise ValueError(f"sizes must be positive, got {height}x{width} -> {size}")
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def resize_short_side(
    frames: np.ndarray, size: int = 256, resample: int = Image.Resampling.BICUBIC
) -> np.ndarray:
    """Resizes every frame so its shorter side is ``size`` (torchvision ``Resize(size)``).

    Args:
      frames: ``[T, H, W, 3]`` uint8.
      size: Target length of the shorter side.
      resample: PIL filter; bicubic by default, as ActionCLIP's test ``GroupScale``.

    Returns:
      ``[T, H', W', 3]`` uint8 with ``(H', W') = resized_size(H, W, size)``. When that
      equals the input size the input is returned unchanged (torchvision skips the
      resize too).
    """
    _check_clip(frames)
    height, width = frames.shape[1:3]
    new_height, new_width = resized_size(height, width, size)
    if (new_height, new_width) == (height, width):
        return frames
    out = np.empty((frames.shape[0], new_height, new_width, 3), np.uint8)
    for t, frame in enumerate(frames):
        # PIL sizes are (width, height).
        out[t] = np.asarray(Image.fromarray(frame).resize((new_width, new_height), resample))
    return out


def _crop_origin(length: int, size: int) -> int:
    # torchvision's center_crop: int(round(...)) with Python's round-half-to-even, so an
    # odd margin of 33 gives 16, not 17. round() of a float already returns an int.
    return round((length - size) / 2.0)


def _check_crop(frames: np.ndarray, size: int) -> None:
    _check_clip(frames)
    height, width = frames.shape[1:3]
    if size <= 0 or size > height or size > width:
        # No padding (torchvision would pad): the resize step always comes first, so a
        # too-small frame here means a configuration mistake.
        raise ValueError(f"cannot take a {size}x{size} crop from {height}x{width} frames")


def center_crop(frames: np.ndarray, size: int = 224) -> np.ndarray:
    """The central ``size x size`` window of every frame (torchvision ``CenterCrop``).

    Args:
      frames: ``[T, H, W, 3]`` with ``H, W >= size``.
      size: Side of the square crop.

    Returns:
      ``[T, size, size, 3]``, a view into ``frames``: top ``= int(round((H - size) / 2))``
      and left likewise.
    """
    _check_crop(frames, size)
    height, width = frames.shape[1:3]
    top, left = _crop_origin(height, size), _crop_origin(width, size)
    return frames[:, top : top + size, left : left + size]


def three_crops(frames: np.ndarray, size: int = 224) -> np.ndarray:
    """Three ``size x size`` windows spread along the longer side (the usual 3-crop test).

    The crops sit at the start, the centre and the end of the longer side (left, centre,
    right for landscape frames; top, centre, bottom for portrait ones, and left/right
    for square ones) and are centred on the shorter side. Centring uses `center_crop`'s
    rounding, so the middle crop equals ``center_crop(frames, size)``. With the usual
    resize of the shorter side to ``size`` the three crops together cover the frame.

    Args:
      frames: ``[T, H, W, 3]`` with ``H, W >= size``.
      size: Side of the square crops.

    Returns:
      ``[3, T, size, size, 3]`` in the order start, centre, end.
    """
    _check_crop(frames, size)
    height, width = frames.shape[1:3]
    if width >= height:
        top = _crop_origin(height, size)
        origins = [(top, left) for left in (0, _crop_origin(width, size), width - size)]
    else:
        left = _crop_origin(width, size)
        origins = [(top, left) for top in (0, _crop_origin(height, size), height - size)]
    return np.stack([frames[:, y : y + size, x : x + size] for y, x in origins])


# ---------------------------------------------------------------------------------------
# Training: multi-scale crop and flip (one geometry per clip)
# ---------------------------------------------------------------------------------------

DEFAULT_SCALES = (1, 0.875, 0.75, 0.66)

# The 13 fixed crop positions of TSN's ``GroupMultiScaleCrop``, in multiples of the grid
# steps ``((W - w) // 4, (H - h) // 4)``. The first five are the only ones without
# ``more_fix_crop``. The order is the original's; it matters only in that positions that
# coincide (a zero step) keep their multiplicity when one is drawn uniformly.
_FIXED_POSITIONS = (
    (0, 0),  # top left
    (4, 0),  # top right
    (0, 4),  # bottom left
    (4, 4),  # bottom right
    (2, 2),  # centre
    (0, 2),  # centre left
    (4, 2),  # centre right
    (2, 4),  # bottom centre
    (2, 0),  # top centre
    (1, 1),  # upper-left quarter
    (3, 1),  # upper-right quarter
    (1, 3),  # lower-left quarter
    (3, 3),  # lower-right quarter
)


def _crop_size_pairs(
    height: int, width: int, scales: tuple[float, ...], input_size: int, max_distort: int
) -> list[tuple[int, int]]:
    base = min(height, width)
    # Sizes within 3 px of the network input are snapped to it, so that crop is resized
    # by at most a hair (or not at all).
    sizes = [int(base * s) for s in scales]
    sizes = [input_size if abs(s - input_size) < 3 else s for s in sizes]
    # (w, h) pairs, heights in the outer loop as in the original; the aspect ratio may be
    # distorted by up to `max_distort` steps of the scale list.
    return [
        (w, h)
        for i, h in enumerate(sizes)
        for j, w in enumerate(sizes)
        if abs(i - j) <= max_distort
    ]


def multi_scale_crop_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    scales: tuple[float, ...] = DEFAULT_SCALES,
    input_size: int = 224,
    max_distort: int = 1,
    more_fix_crop: bool = True,
) -> tuple[int, int, int, int]:
    """Draws a crop window as TSN/ActionCLIP's ``GroupMultiScaleCrop`` (``fix_crop=True``).

    Crop sides are ``int(min(H, W) * s)`` for ``s`` in ``scales``, each snapped to
    ``input_size`` when within 3 px of it. A ``(w, h)`` pair whose scale indices differ by
    at most ``max_distort`` is drawn uniformly, then an offset uniformly from the 13 fixed
    positions (5 without ``more_fix_crop``) on the grid with steps ``(W - w) // 4`` and
    ``(H - h) // 4``. Coinciding positions are kept as duplicates, so with a zero step the
    remaining positions are not equally likely, exactly as in the original.

    Args:
      height: Frame height H.
      width: Frame width W.
      rng: Source of the two draws (pair index, then position index).
      scales: Crop scales relative to the shorter side.
      input_size: Side of the network input (the crops are resized to it).
      max_distort: Largest allowed difference between the scale indices of w and h.
      more_fix_crop: Use all 13 positions rather than the corners and the centre.

    Returns:
      ``(x, y, w, h)``: left, top, width and height of the window. When the shorter side
      is just below ``input_size`` (e.g. 222) the snapped crop is larger than the frame and
      the window reaches outside it; `train_geometric` then pads with black as PIL's
      ``crop`` did in the original.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    pairs = _crop_size_pairs(height, width, tuple(scales), input_size, max_distort)
    crop_w, crop_h = pairs[rng.integers(len(pairs))]
    w_step, h_step = (width - crop_w) // 4, (height - crop_h) // 4
    positions = _FIXED_POSITIONS if more_fix_crop else _FIXED_POSITIONS[:5]
    i, j = positions[rng.integers(len(positions))]
    return i * w_step, j * h_step, crop_w, crop_h


def train_geometric(
    frames: np.ndarray,
    rng: np.random.Generator,
    input_size: int = 224,
    flip: bool = True,
    scales: tuple[float, ...] = DEFAULT_SCALES,
    max_distort: int = 1,
    more_fix_crop: bool = True,
) -> np.ndarray:
    """Training crop, resize and flip: one geometry for the whole clip.

    ``GroupMultiScaleCrop(input_size, scales)`` (window from `multi_scale_crop_box`, black
    where it reaches outside the frame as with PIL's crop, then a bilinear resize of every
    frame to ``input_size x input_size``, which may change the aspect ratio), then
    ``GroupRandomHorizontalFlip`` (p = 0.5 for the clip).

    The resize is OpenCV's ``INTER_LINEAR`` rather than PIL's ``BILINEAR`` (eight times
    faster). Along an axis where the window is at most ``input_size`` (an enlargement,
    the common case) the two compute the same interpolation and differ by at most one
    level (fixed-point rounding). Along an axis where the window is larger (256 -> 224
    from a 256-pixel short side) PIL widens the filter to antialias and OpenCV does not:
    on real frames the mean difference is 0.2-0.4 levels, with up to ~12 levels at a few
    sharp edges.

    Args:
      frames: ``[T, H, W, 3]`` uint8 at their stored resolution (no pre-resize, as in the
        original).
      rng: Drawn from in a fixed order: pair, position, flip. The flip draw happens even
        when ``flip`` is off, so later draws do not depend on the flag.
      input_size: Output side.
      flip: Allow the horizontal flip; turn off for direction-sensitive labels (the
        original disables it for Something-Something).
      scales, max_distort, more_fix_crop: See `multi_scale_crop_box`.

    Returns:
      ``[T, input_size, input_size, 3]`` uint8, a new array.
    """
    _check_clip(frames)
    height, width = frames.shape[1:3]
    x, y, w, h = multi_scale_crop_box(
        height, width, rng, scales, input_size, max_distort, more_fix_crop
    )
    flipped = bool(rng.random() < 0.5) and flip
    window = crop_window(frames, x, y, w, h)  # [T, h, w, 3]
    out = np.empty((frames.shape[0], input_size, input_size, 3), np.uint8)
    for t in range(frames.shape[0]):
        if (w, h) == (input_size, input_size):
            out[t] = window[t]
        else:
            # Into out[t] directly: no temporary image, no copy. INTER_LINEAR is PIL's
            # bilinear (half-pixel centres, edge pixels replicated) in 11-bit fixed point.
            cv2.resize(window[t], (input_size, input_size), dst=out[t], interpolation=_LINEAR)
        if flipped:
            cv2.flip(out[t], 1, dst=out[t])  # In place, mirrored along W.
    return out


_LINEAR = cv2.INTER_LINEAR


def crop_window(frames: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """The window ``(x, y, w, h)`` of every frame, black where it lies outside the frame.

    As PIL's ``Image.crop``, which the original used. A window inside the frames is a
    view; one that reaches outside is a new array.

    Returns:
      ``[T, h, w, 3]`` uint8 whose rows are contiguous (what OpenCV needs).
    """
    num, height, width = frames.shape[:3]
    if frames.strides[-1] != 1 or frames.strides[-2] != 3:
        frames = np.ascontiguousarray(frames)
    if 0 <= x and 0 <= y and x + w <= width and y + h <= height:
        return frames[:, y : y + h, x : x + w]
    window = np.zeros((num, h, w, 3), np.uint8)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, width), min(y + h, height)
    if x0 < x1 and y0 < y1:
        window[:, y0 - y : y1 - y, x0 - x : x1 - x] = frames[:, y0:y1, x0:x1]
    return window


# ---------------------------------------------------------------------------------------
# Training: RandAugment (per frame), as the PyPI ``RandAugment`` 0.1 package
# ---------------------------------------------------------------------------------------

# (name, magnitude at m = 0, magnitude at m = 30), in the package's order.
RAND_AUGMENT_OPS = (
    ("AutoContrast", 0, 1),
    ("Equalize", 0, 1),
    ("Invert", 0, 1),
    ("Rotate", 0, 30),
    ("Posterize", 0, 4),
    ("Solarize", 0, 256),
    ("SolarizeAdd", 0, 110),
    ("Color", 0.1, 1.9),
    ("Contrast", 0.1, 1.9),
    ("Brightness", 0.1, 1.9),
    ("Sharpness", 0.1, 1.9),
    ("ShearX", 0.0, 0.3),
    ("ShearY", 0.0, 0.3),
    ("CutoutAbs", 0, 40),
    ("TranslateXabs", 0.0, 100),
    ("TranslateYabs", 0.0, 100),
)
_RAND_AUGMENT_RANGES = {name: (lo, hi) for name, lo, hi in RAND_AUGMENT_OPS}
# Ops whose magnitude gets a random sign (p = 0.5).
_SIGNED_OPS = frozenset({"Rotate", "ShearX", "ShearY", "TranslateXabs", "TranslateYabs"})
CUTOUT_COLOR = (125, 123, 114)


def rand_augment_magnitude(name: str, m: float) -> float:
    """The package's magnitude ``v = m / 30 * (max - min) + min`` for op ``name``."""
    lo, hi = _RAND_AUGMENT_RANGES[name]
    # Same operation order as the package, so the float is identical (e.g. 76.8 for
    # Solarize at m = 9).
    return float(m) / 30 * float(hi - lo) + lo


def _affine(img: Image.Image, coeffs: tuple[float, ...]) -> Image.Image:
    # `coeffs` maps output (x, y) to input (a x + b y + c, d x + e y + f); nearest
    # neighbour and black outside, PIL's defaults, which the package relies on.
    return img.transform(img.size, Image.Transform.AFFINE, coeffs)


def _cutout(img: Image.Image, v: float, rng: np.random.Generator) -> Image.Image:
    if v < 0:
        return img
    width, height = img.size
    # The package calls np.random.uniform(w), i.e. low=w, high=1: the centre is uniform
    # on [1, w) rather than [0, w). Kept, it is harmless.
    cx, cy = rng.uniform(1.0, width), rng.uniform(1.0, height)
    x0, y0 = int(max(0, cx - v / 2.0)), int(max(0, cy - v / 2.0))
    x1, y1 = min(width, x0 + v), min(height, y0 + v)
    img = img.copy()
    # PIL rectangles include both corners, so the square is v + 1 px wide (13 at m = 9)
    # unless clipped by the border; faithful to the package.
    ImageDraw.Draw(img).rectangle((x0, y0, x1, y1), CUTOUT_COLOR)
    return img


def _solarize_add(img: Image.Image, v: float) -> Image.Image:
    added = np.asarray(img).astype(np.float64) + v
    # Clip, truncate to uint8 (float magnitudes are floored), then invert above 128.
    return ImageOps.solarize(Image.fromarray(np.clip(added, 0, 255).astype(np.uint8)), 128)


def _apply_op(img: Image.Image, name: str, v: float, rng: np.random.Generator) -> Image.Image:
    if name in _SIGNED_OPS and rng.random() > 0.5:
        v = -v
    if name == "AutoContrast":  # stretch each channel to span 0..255
        return ImageOps.autocontrast(img)
    if name == "Equalize":  # equalise each channel's histogram
        return ImageOps.equalize(img)
    if name == "Invert":  # 255 - x
        return ImageOps.invert(img)
    if name == "Rotate":  # v degrees counter-clockwise about the centre, black corners
        return img.rotate(v)
    if name == "Posterize":  # keep the top int(v) bits (at least 1; PIL refuses 0)
        return ImageOps.posterize(img, max(1, int(v)))
    if name == "Solarize":  # x >= v becomes 255 - x
        return ImageOps.solarize(img, v)
    if name == "SolarizeAdd":  # add v (clipped), then x >= 128 becomes 255 - x
        return _solarize_add(img, v)
    if name == "Color":  # blend with the grayscale image by factor v (saturation)
        return ImageEnhance.Color(img).enhance(v)
    if name == "Contrast":  # blend with the mean grey level by factor v
        return ImageEnhance.Contrast(img).enhance(v)
    if name == "Brightness":  # blend with black by factor v, i.e. scale by v
        return ImageEnhance.Brightness(img).enhance(v)
    if name == "Sharpness":  # blend with PIL's smoothed image by factor v
        return ImageEnhance.Sharpness(img).enhance(v)
    if name == "ShearX":  # output (x, y) reads input (x + v y, y)
        return _affine(img, (1, v, 0, 0, 1, 0))
    if name == "ShearY":  # output (x, y) reads input (x, v x + y)
        return _affine(img, (1, 0, 0, v, 1, 0))
    if name == "CutoutAbs":  # paint a grey square of side ~v at a random place
        return _cutout(img, v, rng)
    if name == "TranslateXabs":  # output (x, y) reads input (x + v, y): content moves left
        return _affine(img, (1, 0, v, 0, 1, 0))
    if name == "TranslateYabs":  # output (x, y) reads input (x, y + v): content moves up
        return _affine(img, (1, 0, 0, 0, 1, v))
    raise ValueError(f"unknown RandAugment op {name!r}")


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(
            f"expected a frame of shape [H, W, 3], got {getattr(frame, 'shape', None)}"
        )
    if frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 frame, got {frame.dtype}")


def rand_augment_op(
    frame: np.ndarray, name: str, v: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Applies one RandAugment op with magnitude ``v`` to a uint8 ``[H, W, 3]`` frame.

    ``rng`` supplies the sign of Rotate/Shear/Translate (flipped with p = 0.5) and the
    position of CutoutAbs; it may be None for the other ops. ``v`` is used as given (see
    `rand_augment_magnitude`), signed ops then possibly negate it.
    """
    _check_frame(frame)
    if rng is None and (name in _SIGNED_OPS or name == "CutoutAbs"):
        raise ValueError(f"{name} needs an rng")
    return np.asarray(_apply_op(Image.fromarray(frame), name, v, rng))


def rand_augment(
    frame: np.ndarray, rng: np.random.Generator, n: int = 2, m: float = 9
) -> np.ndarray:
    """RandAugment(n, m) on one frame, as the PyPI ``RandAugment`` 0.1 package.

    Draws ``n`` ops uniformly with replacement from `RAND_AUGMENT_OPS` and applies them in
    the drawn order, each with magnitude `rand_augment_magnitude` ``(op, m)``.

    Args:
      frame: ``[H, W, 3]`` uint8.
      rng: Draws, in order: the ``n`` op indices, then per op its sign or cutout place.
      n: Number of ops.
      m: Magnitude in [0, 30].

    Returns:
      ``[H, W, 3]`` uint8.
    """
    _check_frame(frame)
    if not 0 <= m <= 30:
        raise ValueError(f"RandAugment magnitude must be in [0, 30], got {m}")
    img = Image.fromarray(frame)
    for index in rng.integers(len(RAND_AUGMENT_OPS), size=n):
        name = RAND_AUGMENT_OPS[index][0]
        img = _apply_op(img, name, rand_augment_magnitude(name, m), rng)
    return np.asarray(img)


def rand_augment_clip(
    frames: np.ndarray, rng: np.random.Generator, n: int = 2, m: float = 9
) -> np.ndarray:
    """`rand_augment` on every frame independently (the original's ``GroupTransform``).

    Each frame draws its own ops, signs and cutout places. Run it on the full-size frames,
    before `train_geometric`, as the original does. ``n = 0`` returns ``frames`` itself.

    Returns:
      ``[T, H, W, 3]`` uint8.
    """
    _check_clip(frames)
    if n == 0:
        return frames
    return np.stack([rand_augment(frame, rng, n, m) for frame in frames])
