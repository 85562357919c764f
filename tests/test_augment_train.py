"""Tests for the host-side training augmentations in data_pipeline.transforms."""

import collections

import cv2
import media
import numpy as np
import pytest
from PIL import Image

from data_pipeline.transforms import (
    RAND_AUGMENT_OPS,
    multi_scale_crop_box,
    rand_augment,
    rand_augment_clip,
    rand_augment_magnitude,
    rand_augment_op,
    resize_short_side,
    train_geometric,
)
from data_pipeline.video import read_video_frames

# The 13 fixed positions in multiples of (w_step, h_step), written out independently of
# the module: corners, centre, edge centres, quarter points.
MULTIPLES = [
    (0, 0), (4, 0), (0, 4), (4, 4), (2, 2),
    (0, 2), (4, 2), (2, 4), (2, 0),
    (1, 1), (3, 1), (1, 3), (3, 3),
]  # fmt: skip


def allowed_pairs(sizes):
    """(w, h) pairs whose indices in ``sizes`` differ by at most 1."""
    return {
        (sizes[i], sizes[j])
        for i in range(len(sizes))
        for j in range(len(sizes))
        if abs(i - j) <= 1
    }


def expected_boxes(height, width, sizes):
    boxes = set()
    for w, h in allowed_pairs(sizes):
        w_step, h_step = (width - w) // 4, (height - h) // 4
        boxes |= {(i * w_step, j * h_step, w, h) for i, j in MULTIPLES}
    return boxes


# base 256: int(256 * [1, .875, .75, .66]) = [256, 224, 192, 168] (168.96 truncated);
# 224 is the input size already.
SIZES_256 = [256, 224, 192, 168]
# base 255: [255, 223.125 -> 223, 191.25 -> 191, 168.3 -> 168]; 223 is within 3 of 224
# and snaps to it.
SIZES_255 = [255, 224, 191, 168]


def test_allowed_pairs_written_out():
    assert allowed_pairs(SIZES_256) == {
        (256, 256), (256, 224), (224, 256), (224, 224), (224, 192),
        (192, 224), (192, 192), (192, 168), (168, 192), (168, 168),
    }  # fmt: skip


@pytest.mark.parametrize(
    "height, width, sizes",
    [(256, 340, SIZES_256), (340, 256, SIZES_256), (255, 340, SIZES_255)],
    ids=["340x256", "256x340", "340x255-snap"],
)
def test_crop_boxes_are_exactly_the_expected_set(height, width, sizes):
    rng = np.random.default_rng(0)
    boxes = [multi_scale_crop_box(height, width, rng) for _ in range(3000)]
    expected = expected_boxes(height, width, sizes)
    assert set(boxes) == expected
    assert len(expected) > 60  # sanity: the set is not degenerate
    for x, y, w, h in boxes:
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
        assert all(type(v) is int for v in (x, y, w, h))


def test_crop_without_more_fix_crop_uses_corners_and_centre():
    rng = np.random.default_rng(1)
    boxes = {multi_scale_crop_box(256, 340, rng, more_fix_crop=False) for _ in range(2000)}
    expected = set()
    for w, h in allowed_pairs(SIZES_256):
        w_step, h_step = (340 - w) // 4, (256 - h) // 4
        expected |= {(i * w_step, j * h_step, w, h) for i, j in MULTIPLES[:5]}
    assert boxes == expected


def test_duplicate_positions_keep_their_weight():
    # Only the full-height 256x256 crop of a 340x256 frame: h_step = 0, so the 13
    # positions collapse to 5 x-offsets with multiplicities 3, 2, 3, 2, 3 (x / 21 = 0..4),
    # which the original draws from with those weights, not uniformly.
    rng = np.random.default_rng(2)
    n = 20000
    counts = collections.Counter()
    for _ in range(n):
        x, y, w, h = multi_scale_crop_box(256, 340, rng, scales=(1,))
        assert (y, w, h) == (0, 256, 256) and x % 21 == 0
        counts[x // 21] += 1
    for k, weight in zip(range(5), (3, 2, 3, 2, 3)):
        p = weight / 13
        assert abs(counts[k] - n * p) < 4.5 * np.sqrt(n * p * (1 - p)), (k, counts)


def test_snapped_crop_larger_than_frame_is_padded_black():
    # Short side 222: the full-side crop 222 snaps to 224 > 222, so the window leaves the
    # frame (negative step) and PIL's crop pads with black, as in the original.
    frames = np.full((2, 222, 224, 3), 200, np.uint8)
    for seed in range(500):
        _, y, w, h = multi_scale_crop_box(222, 224, np.random.default_rng(seed))
        if y < 0 and (w, h) == (224, 224):  # no resize, so the border survives exactly
            break
    else:
        pytest.fail("no out-of-frame box drawn")
    out = train_geometric(frames, np.random.default_rng(seed), flip=False)
    rows = np.arange(224) + y  # the frame row each output row reads
    inside = (rows >= 0) & (rows < 222)
    assert (out[:, inside] == 200).all() and (out[:, ~inside] == 0).all() and (~inside).any()


def test_window_outside_the_frame_is_black_before_the_resize():
    # Short side 222: crops of 224 (snapped) leave the frame vertically, and with the
    # other side at 194 they are also resized: the black border is blended in as PIL's
    # crop-then-resize does.
    frames = np.random.default_rng(0).integers(0, 256, (2, 222, 300, 3), dtype=np.uint8)
    found = False
    for seed in range(300):
        box = multi_scale_crop_box(222, 300, np.random.default_rng(seed))
        if box[1] >= 0 or box[2] == 224:
            continue
        found = True
        out = train_geometric(frames, np.random.default_rng(seed), flip=False)
        diff = np.abs(out.astype(np.int16) - pil_geometric(frames, box))
        assert diff.max() <= 1, (box, diff.max())
    assert found


def reference_geometric(frames, seed, input_size):
    """Crop + bilinear resize + flip by hand, from the same draws in the same order.

    The resize is OpenCV's, as in the module (its closeness to PIL's is pinned on real
    frames below), so that this pins the geometry and the draws exactly.
    """
    rng = np.random.default_rng(seed)
    x, y, w, h = multi_scale_crop_box(frames.shape[1], frames.shape[2], rng)
    flipped = rng.random() < 0.5
    size = (input_size, input_size)
    crops = [np.ascontiguousarray(f[y : y + h, x : x + w]) for f in frames]
    out = np.stack([cv2.resize(c, size, interpolation=cv2.INTER_LINEAR) for c in crops])
    return out[:, :, ::-1] if flipped else out, flipped


def pil_geometric(frames, box, input_size=224):
    """The original's crop and resize: PIL crop, then PIL bilinear (antialiased)."""
    x, y, w, h = box
    return np.stack([
        np.asarray(
            Image.fromarray(f).crop((x, y, x + w, y + h)).resize(
                (input_size, input_size), Image.Resampling.BILINEAR
            )
        )
        for f in frames
    ])  # fmt: skip


@pytest.fixture(scope="module")
def bikes_256():
    """Ten frames of the real clip bikes.mp4, short side 256 as prepared data: [10, 256, 602, 3]."""
    frames = read_video_frames(media.bikes_mp4_path(), np.arange(0, 250, 25))
    return resize_short_side(frames, 256)


def test_train_geometric_resize_is_pil_bilinear_within_tolerance(bikes_256):
    # Every (w, h) pair from a 256 short side: [256, 224, 192, 168]. Enlargements (and
    # the identity) are PIL's bilinear up to fixed-point rounding: at most one level.
    # Where the window is larger than 224 along an axis PIL antialiases and OpenCV does
    # not: small on average, a few sharp edges differ more (measured: mean <= 0.4,
    # 99.9th percentile <= 6, max 15 levels).
    seen = set()
    for seed in range(200):
        box = multi_scale_crop_box(256, 602, np.random.default_rng(seed))
        out = train_geometric(bikes_256, np.random.default_rng(seed), flip=False)
        diff = np.abs(out.astype(np.int16) - pil_geometric(bikes_256, box))
        w, h = box[2:]
        seen.add((w, h))
        if w <= 224 and h <= 224:
            assert diff.max() <= 1 and diff.mean() < 0.25, (box, diff.max(), diff.mean())
        else:
            assert diff.mean() < 0.6 and np.percentile(diff, 99.9) <= 8, (box, diff.mean())
            assert diff.max() <= 24, (box, diff.max())
    assert seen == allowed_pairs(SIZES_256)


def test_train_geometric_same_geometry_for_every_frame():
    rng = np.random.default_rng(3)
    clip = rng.integers(0, 256, (3, 256, 340, 3), dtype=np.uint8)  # frames differ
    seen_flip = set()
    for seed in range(12):
        out = train_geometric(clip, np.random.default_rng(seed))
        assert out.shape == (3, 224, 224, 3) and out.dtype == np.uint8
        assert out.flags.c_contiguous
        ref, flipped = reference_geometric(clip, seed, 224)
        seen_flip.add(flipped)
        np.testing.assert_array_equal(out, ref)
        # Each frame alone, from the same seed, gets the same result: one geometry per clip.
        for t in range(3):
            alone = train_geometric(clip[t : t + 1], np.random.default_rng(seed))
            np.testing.assert_array_equal(out[t], alone[0])
    assert seen_flip == {True, False}


def test_train_geometric_shape_and_input_size():
    clip = np.zeros((5, 340, 256, 3), np.uint8)
    out = train_geometric(clip, np.random.default_rng(0), input_size=112)
    assert out.shape == (5, 112, 112, 3) and out.dtype == np.uint8
    with pytest.raises(ValueError):
        train_geometric(clip.astype(np.float32), np.random.default_rng(0))


def ramp_clip():
    # Brightness grows with x, so a flip shows as a decreasing row.
    x = np.linspace(0, 255, 40).astype(np.uint8)
    return np.broadcast_to(x[None, None, :, None], (2, 30, 40, 3)).copy()


def is_flipped(out):
    return out[..., 0].astype(int)[:, :, 0].mean() > out[..., 0].astype(int)[:, :, -1].mean()


def test_flip_rate_is_one_half():
    clip, rng, n = ramp_clip(), np.random.default_rng(4), 2000
    flips = sum(is_flipped(train_geometric(clip, rng, input_size=8)) for _ in range(n))
    assert abs(flips - n / 2) < 4.5 * np.sqrt(n / 4), flips


def test_flip_disabled():
    clip, rng = ramp_clip(), np.random.default_rng(5)
    assert not any(is_flipped(train_geometric(clip, rng, 8, flip=False)) for _ in range(300))


def test_flip_flag_does_not_change_the_draws():
    clip = np.random.default_rng(6).integers(0, 256, (2, 60, 80, 3), dtype=np.uint8)
    on = train_geometric(clip, np.random.default_rng(7), 32, flip=True)
    off = train_geometric(clip, np.random.default_rng(7), 32, flip=False)
    assert np.array_equal(on, off) or np.array_equal(on, off[:, :, ::-1])


# --- RandAugment ------------------------------------------------------------------------


def test_magnitudes_follow_the_formula():
    m9 = {name: rand_augment_magnitude(name, 9) for name, _, _ in RAND_AUGMENT_OPS}
    expected = {
        "AutoContrast": 0.3, "Equalize": 0.3, "Invert": 0.3, "Rotate": 9.0,
        "Posterize": 1.2, "Solarize": 76.8, "SolarizeAdd": 33.0, "Color": 0.64,
        "Contrast": 0.64, "Brightness": 0.64, "Sharpness": 0.64, "ShearX": 0.09,
        "ShearY": 0.09, "CutoutAbs": 12.0, "TranslateXabs": 30.0, "TranslateYabs": 30.0,
    }  # fmt: skip
    assert m9 == pytest.approx(expected, abs=1e-12)
    for name, lo, hi in RAND_AUGMENT_OPS:
        assert rand_augment_magnitude(name, 0) == lo
        assert rand_augment_magnitude(name, 30) == pytest.approx(hi)
    assert len(RAND_AUGMENT_OPS) == 16


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(8).integers(0, 256, (32, 48, 3), dtype=np.uint8)


def test_rand_augment_is_deterministic_and_draws_in_documented_order(image):
    a = rand_augment(image, np.random.default_rng(9), n=2, m=9)
    b = rand_augment(image, np.random.default_rng(9), n=2, m=9)
    np.testing.assert_array_equal(a, b)
    for seed in range(30):
        rng = np.random.default_rng(seed)
        out = image
        for index in rng.integers(16, size=3):
            name = RAND_AUGMENT_OPS[index][0]
            out = rand_augment_op(out, name, rand_augment_magnitude(name, 13), rng)
        np.testing.assert_array_equal(rand_augment(image, np.random.default_rng(seed), 3, 13), out)
    with pytest.raises(ValueError):
        rand_augment(image, np.random.default_rng(0), m=31)


def test_rand_augment_clip_is_per_frame(image):
    clip = np.stack([image] * 8)
    out = rand_augment_clip(clip, np.random.default_rng(10), n=2, m=9)
    assert out.shape == clip.shape and out.dtype == np.uint8
    assert len({frame.tobytes() for frame in out}) > 4  # frames draw their own ops
    again = rand_augment_clip(clip, np.random.default_rng(10), n=2, m=9)
    np.testing.assert_array_equal(out, again)
    assert rand_augment_clip(clip, np.random.default_rng(0), n=0) is clip


def test_invert(image):
    np.testing.assert_array_equal(rand_augment_op(image, "Invert", 0.3), 255 - image)


def test_posterize_keeps_top_bits(image):
    np.testing.assert_array_equal(rand_augment_op(image, "Posterize", 1.2), image & 0x80)
    np.testing.assert_array_equal(rand_augment_op(image, "Posterize", 3.9), image & 0xE0)
    np.testing.assert_array_equal(rand_augment_op(image, "Posterize", 0.3), image & 0x80)


def test_solarize_threshold():
    x = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    out = rand_augment_op(x, "Solarize", 76.8).astype(int)
    xi = x.astype(int)
    np.testing.assert_array_equal(out, np.where(xi <= 76, xi, 255 - xi))


def test_solarize_add():
    x = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    added = np.minimum(x.astype(int) + 33, 255)
    out = rand_augment_op(x, "SolarizeAdd", 33.0).astype(int)
    np.testing.assert_array_equal(out, np.where(added < 128, added, 255 - added))


def test_cutout_paints_a_grey_square():
    image = np.zeros((64, 64, 3), np.uint8)
    interior = 0
    for seed in range(40):
        out = rand_augment_op(image, "CutoutAbs", 12.0, np.random.default_rng(seed))
        painted = (out != 0).any(axis=-1)
        ys, xs = np.nonzero(painted)
        assert (out[painted] == (125, 123, 114)).all()
        # A filled axis-aligned rectangle...
        assert painted.sum() == (np.ptp(ys) + 1) * (np.ptp(xs) + 1)
        # ...of side v + 1 = 13 (PIL includes both corners) unless clipped by the border.
        for lo, hi in ((ys.min(), ys.max()), (xs.min(), xs.max())):
            side = hi - lo + 1
            assert side == 13 or (side < 13 and (lo == 0 or hi == 63))
        interior += (np.ptp(ys) + 1, np.ptp(xs) + 1) == (13, 13)
    assert interior > 20


def test_translate_shifts_with_random_sign(image):
    directions = set()
    for seed in range(20):
        out = rand_augment_op(image, "TranslateXabs", 10.0, np.random.default_rng(seed))
        if np.array_equal(out[:, :-10], image[:, 10:]):  # content moved left
            assert (out[:, -10:] == 0).all()
            directions.add("left")
        else:
            np.testing.assert_array_equal(out[:, 10:], image[:, :-10])
            assert (out[:, :10] == 0).all()
            directions.add("right")
        out = rand_augment_op(image, "TranslateYabs", 5.0, np.random.default_rng(seed))
        assert np.array_equal(out[:-5], image[5:]) or np.array_equal(out[5:], image[:-5])
    assert directions == {"left", "right"}


def test_rotate_right_angle(image):
    square = image[:32, :32]
    outs = {
        rand_augment_op(square, "Rotate", 90.0, np.random.default_rng(s)).tobytes()
        for s in range(20)
    }
    assert outs == {np.rot90(square, 1).tobytes(), np.rot90(square, -1).tobytes()}


def test_shear_x_keeps_rows_and_shifts_by_v_times_y():
    h, w = 20, 64
    ys, xs = np.mgrid[:h, :w]
    coords = np.stack([ys + 1, xs + 1, np.full_like(ys, 7)], axis=-1).astype(np.uint8)
    out = rand_augment_op(coords, "ShearX", 0.3, np.random.default_rng(0)).astype(int)
    inside = out[..., 2] == 7
    assert inside.mean() > 0.8
    # Sampling stays on the output row; the source column is x + v y up to rounding.
    np.testing.assert_array_equal(out[..., 0][inside] - 1, ys[inside])
    shift = (out[..., 1] - 1 - xs)[inside]
    assert np.abs(np.abs(shift) - 0.3 * ys[inside]).max() <= 1


def test_colour_ops():
    rng = np.random.default_rng(11)
    # Enough pixels that PIL's equalize has a non-zero step (it skips tiny images).
    low = rng.integers(50, 101, (64, 64, 3), dtype=np.uint8)
    out = rand_augment_op(low, "AutoContrast", 0.3)
    # Each channel stretched from [50, 100] to the full range (PIL's integer lut may stop
    # at 254).
    assert (out.reshape(-1, 3).min(0) == 0).all() and (out.reshape(-1, 3).max(0) >= 254).all()
    eq = rand_augment_op(low, "Equalize", 0.3).astype(int)
    assert eq.max() - eq.min() > 200  # histogram spread over the range
    order = np.argsort(low[..., 0], axis=None, kind="stable")
    assert (np.diff(eq[..., 0].ravel()[order]) >= 0).all()  # a monotone remapping
    bright = rand_augment_op(low, "Brightness", 0.5).astype(int)
    assert np.abs(bright - low.astype(int) * 0.5).max() <= 1
    grey = rand_augment_op(low, "Color", 0.1 * 0)  # factor 0: fully desaturated
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    flat = rand_augment_op(low, "Contrast", 0.0)
    assert (flat == flat[0, 0]).all()
    const = np.full((8, 8, 3), 90, np.uint8)
    np.testing.assert_array_equal(rand_augment_op(const, "Sharpness", 1.9), const)
