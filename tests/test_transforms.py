"""Tests for data_pipeline.transforms (test-time resize and crops)."""
import numpy as np
import pytest
from PIL import Image

from data_pipeline.transforms import center_crop, resize_short_side, resized_size, three_crops


def coordinate_clip(num_frames, height, width):
    """A uint8 clip ``[T, H, W, 3]`` whose pixels spell out their own (t, y, x).

    Channel 0 holds the low byte of y, channel 1 the low byte of x, channel 2 the high
    bits of y (bits 0-1), of x (bits 2-3) and t (bits 4-7).
    """
    t, y, x = np.meshgrid(np.arange(num_frames), np.arange(height), np.arange(width),
                          indexing="ij")
    assert height <= 1024 and width <= 1024 and num_frames <= 16
    return np.stack([y & 255, x & 255, (y >> 8) | ((x >> 8) << 2) | (t << 4)],
                    axis=-1).astype(np.uint8)


def decode_coordinates(clip):
    """Inverse of `coordinate_clip`: ``(t, y, x)`` integer arrays of shape ``[T, H, W]``."""
    c = clip.astype(np.int64)
    y = c[..., 0] + 256 * (c[..., 2] & 3)
    x = c[..., 1] + 256 * ((c[..., 2] >> 2) & 3)
    return c[..., 2] >> 4, y, x


def assert_window(crop, top, left, size):
    """``crop`` ``[T, size, size, 3]`` is the window at (top, left) of every frame."""
    t, y, x = decode_coordinates(crop)
    assert crop.shape[1:3] == (size, size)
    rows, cols = np.arange(size)[None, :, None], np.arange(size)[None, None, :]
    np.testing.assert_array_equal(t, np.broadcast_to(np.arange(crop.shape[0])[:, None, None], t.shape))
    np.testing.assert_array_equal(y, np.broadcast_to(top + rows, y.shape))
    np.testing.assert_array_equal(x, np.broadcast_to(left + cols, x.shape))


def test_coordinate_encoding_round_trips():
    clip = coordinate_clip(3, 341, 600)
    t, y, x = decode_coordinates(clip)
    assert t[2, 0, 0] == 2 and y[0, 340, 0] == 340 and x[1, 0, 599] == 599


# --- resize -----------------------------------------------------------------------------


def test_resized_size_follows_torchvision():
    # (height, width) in and out; inputs named W x H in the comments.
    assert resized_size(256, 340, 256) == (256, 340)  # 340x256: already short side 256.
    assert resized_size(240, 320, 256) == (256, 341)  # 320x240: 256*320/240 = 341.33.
    assert resized_size(340, 256, 256) == (340, 256)  # 256x340 portrait.
    # The long side is truncated, not rounded: 224*340/256 = 297.5 -> 297.
    assert resized_size(256, 340, 224) == (224, 297)
    assert resized_size(240, 320, 224) == (224, 298)  # 298.67 -> 298.
    assert resized_size(340, 256, 224) == (297, 224)
    assert resized_size(128, 171, 256) == (256, 342)  # 342.0 exactly.
    assert resized_size(100, 100, 256) == (256, 256)
    assert resized_size(272, 640, 256) == (256, 602)  # bikes.mp4: 602.35 -> 602.
    with pytest.raises(ValueError):
        resized_size(0, 10, 256)


@pytest.mark.parametrize("height,width,expected", [
    (256, 340, (256, 340)), (240, 320, (256, 341)), (340, 256, (340, 256)),
    (120, 160, (256, 341)), (300, 200, (384, 256))])
def test_resize_short_side_shape(height, width, expected):
    clip = np.random.default_rng(0).integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    out = resize_short_side(clip, 256)
    assert out.shape == (2, *expected, 3) and out.dtype == np.uint8


def test_resize_is_pil_bicubic():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (3, 240, 320, 3), dtype=np.uint8)
    out = resize_short_side(clip, 256)  # [3, 256, 341, 3]
    for t in range(3):
        expected = np.asarray(Image.fromarray(clip[t]).resize((341, 256), Image.Resampling.BICUBIC))
        np.testing.assert_array_equal(out[t], expected)
    # Another filter goes through PIL too.
    out = resize_short_side(clip, 128, resample=Image.Resampling.BILINEAR)
    expected = np.asarray(Image.fromarray(clip[1]).resize((170, 128), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out[1], expected)


def test_resize_same_size_is_identity():
    clip = np.random.default_rng(0).integers(0, 256, (2, 256, 340, 3), dtype=np.uint8)
    assert resize_short_side(clip, 256) is clip


def test_resize_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        resize_short_side(np.zeros((1, 8, 8, 3), np.float32), 4)
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        resize_short_side(np.zeros((8, 8, 3), np.uint8), 4)


# --- crops ------------------------------------------------------------------------------


@pytest.mark.parametrize("height,width,top,left", [
    (256, 340, 16, 58),   # Margins 32 and 116: exact halves.
    (257, 341, 16, 58),   # 16.5 and 58.5 round half to even: 16 and 58.
    (259, 343, 18, 60),   # 17.5 -> 18, 59.5 -> 60.
    (224, 224, 0, 0),
    (340, 256, 58, 16),   # Portrait.
])
def test_center_crop_window(height, width, top, left):
    clip = coordinate_clip(2, height, width)
    crop = center_crop(clip, 224)
    assert crop.shape == (2, 224, 224, 3)
    assert_window(crop, top, left, 224)


def test_three_crops_landscape():
    clip = coordinate_clip(2, 257, 341)
    crops = three_crops(clip, 224)
    assert crops.shape == (3, 2, 224, 224, 3)
    # Along the width: start, centre (58.5 -> 58), end (341 - 224 = 117); top centred.
    for crop, left in zip(crops, [0, 58, 117]):
        assert_window(crop, 16, left, 224)
    np.testing.assert_array_equal(crops[1], center_crop(clip, 224))


def test_three_crops_portrait():
    clip = coordinate_clip(1, 340, 256)
    crops = three_crops(clip, 224)
    assert crops.shape == (3, 1, 224, 224, 3)
    for crop, top in zip(crops, [0, 58, 116]):
        assert_window(crop, top, 16, 224)


def test_three_crops_cover_short_side_resized_frame():
    # The usual setting: shorter side resized to the crop size; crops span the long side.
    clip = coordinate_clip(1, 224, 400)
    crops = three_crops(clip, 224)
    for crop, left in zip(crops, [0, 88, 176]):
        assert_window(crop, 0, left, 224)


def test_crop_too_large_raises():
    clip = coordinate_clip(1, 200, 300)
    with pytest.raises(ValueError, match="224x224"):
        center_crop(clip, 224)
    with pytest.raises(ValueError, match="224x224"):
        three_crops(clip, 224)
    with pytest.raises(ValueError):
        center_crop(coordinate_clip(1, 300, 200), 224)


def test_test_time_pipeline_shapes():
    clip = np.random.default_rng(0).integers(0, 256, (8, 240, 320, 3), dtype=np.uint8)
    out = center_crop(resize_short_side(clip, 256), 224)
    assert out.shape == (8, 224, 224, 3) and out.dtype == np.uint8
