"""Geometric transforms on clips: uint8 ``[T, H, W, 3]`` arrays, one geometry per clip.

Every frame of a clip gets the same resize and the same crop window, as in ActionCLIP's
``Group*`` transforms. Resizing goes through PIL so that the pixels match the original
(torchvision transforms on PIL images call PIL themselves).

Test-time path of the original (``GroupScale(256)`` then ``GroupCenterCrop(224)``)::

    clip = center_crop(resize_short_side(frames, 256), 224)

Training augmentations (multi-scale crop, flip, colour jitter, grayscale, RandAugment;
ActionCLIP section 5.5) will live in this module too, below the test-time part.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


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
    return frames[:, top:top + size, left:left + size]


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
    return np.stack([frames[:, y:y + size, x:x + size] for y, x in origins])


# ---------------------------------------------------------------------------------------
# Training augmentations: to come (see the module docstring).
# ---------------------------------------------------------------------------------------
