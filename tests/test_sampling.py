"""Tests for data_pipeline.sampling (ActionCLIP's TSN segment sampling, 0-based)."""
import numpy as np
import pytest

from data_pipeline.sampling import test_indices as sample_test_indices
from data_pipeline.sampling import train_indices

# Imported under another name: pytest would otherwise collect `test_indices` as a test.


def _original_val_indices(num_frames, num_segments):
    """ActionCLIP's `_get_val_indices` as written there, minus its +1 index bias."""
    if num_segments == 1:
        return np.array([num_frames // 2], dtype=int)
    if num_frames <= num_segments:
        return np.array([i * num_frames // num_segments for i in range(num_segments)], dtype=int)
    offset = (num_frames / num_segments - 1) / 2.0
    return np.array([i * num_frames / num_segments + offset + j
                     for i in range(num_segments) for j in range(1)], dtype=int)


# --- train -----------------------------------------------------------------------------


def test_train_exact_values_fixed_seeds():
    # Pinned outputs: a change here changes every training run's data order.
    assert train_indices(300, 8, np.random.default_rng(0)).tolist() == [
        31, 61, 93, 122, 161, 188, 227, 262]
    assert train_indices(300, 8, np.random.default_rng(1)).tolist() == [
        17, 56, 102, 148, 151, 192, 255, 298]
    assert train_indices(5, 8, np.random.default_rng(0)).tolist() == [0, 1, 2, 2, 3, 3, 4, 4]
    assert train_indices(5, 8, np.random.default_rng(2)).tolist() == [0, 0, 1, 1, 2, 3, 4, 4]


def test_train_matches_spelled_out_rule():
    # The vectorised draw equals one rng.integers(width) call per segment, in order.
    for f, t, seed in [(300, 8, 0), (9, 8, 1), (1000, 16, 2), (17, 3, 3)]:
        rng = np.random.default_rng(seed)
        ticks = [i * f // t for i in range(t + 1)]
        expected = [ticks[i] + int(rng.integers(ticks[i + 1] - ticks[i])) for i in range(t)]
        np.testing.assert_array_equal(train_indices(f, t, np.random.default_rng(seed)), expected)


def test_train_dtype_and_shape():
    out = train_indices(100, 8, np.random.default_rng(0))
    assert out.dtype == np.int64 and out.shape == (8,)
    out = train_indices(3, 8, np.random.default_rng(0))
    assert out.dtype == np.int64 and out.shape == (8,)


def test_train_equal_length_is_every_frame():
    for seed in range(5):
        assert train_indices(8, 8, np.random.default_rng(seed)).tolist() == list(range(8))


@pytest.mark.parametrize("num_frames", [1, 2, 5, 7])
def test_train_short_video_has_all_frames_sorted(num_frames):
    for seed in range(50):
        out = train_indices(num_frames, 8, np.random.default_rng(seed))
        assert out.shape == (8,)
        assert set(out.tolist()) == set(range(num_frames))  # Every frame at least once.
        assert np.all(np.diff(out) >= 0)


@pytest.mark.parametrize("num_frames,num_segments", [(9, 8), (17, 8), (300, 8), (301, 16),
                                                     (720, 32), (10, 1)])
def test_train_one_index_inside_each_segment(num_frames, num_segments):
    ticks = np.arange(num_segments + 1) * num_frames // num_segments
    seen = np.zeros(num_frames, bool)
    for seed in range(200):
        out = train_indices(num_frames, num_segments, np.random.default_rng(seed))
        assert np.all(out >= ticks[:-1]) and np.all(out < ticks[1:])
        seen[out] = True
    if num_frames <= 20:  # Small segments: every frame gets drawn over many seeds.
        assert seen.all()


def test_train_depends_on_rng():
    a = train_indices(300, 8, np.random.default_rng(0))
    b = train_indices(300, 8, np.random.default_rng(1))
    assert not np.array_equal(a, b)


# --- test ------------------------------------------------------------------------------


def test_test_hand_computed():
    # F=300, T=8: segment length 37.5, offset (37.5 - 1) / 2 = 18.25,
    # i*37.5 + 18.25 = 18.25, 55.75, 93.25, 130.75, 168.25, 205.75, 243.25, 280.75.
    assert sample_test_indices(300, 8).tolist() == [18, 55, 93, 130, 168, 205, 243, 280]
    # T == 1: the middle frame F // 2.
    assert sample_test_indices(10, 1).tolist() == [5]
    assert sample_test_indices(11, 1).tolist() == [5]
    assert sample_test_indices(1, 1).tolist() == [0]
    # F <= T: i*F // T.
    assert sample_test_indices(5, 8).tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    assert sample_test_indices(8, 8).tolist() == list(range(8))
    assert sample_test_indices(1, 8).tolist() == [0] * 8
    # F = 9, T = 8: L = 1.125, offset 0.0625 -> int(i*1.125 + 0.0625).
    assert sample_test_indices(9, 8).tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    # F = 20, T = 3: L = 6.667, offset 2.833 -> 2.83, 9.5, 16.17.
    assert sample_test_indices(20, 3).tolist() == [2, 9, 16]


def test_test_dtype():
    for f, t in [(300, 8), (5, 8), (10, 1)]:
        out = sample_test_indices(f, t)
        assert out.dtype == np.int64 and out.shape == (t,)


def test_single_clip_equals_original_formula_everywhere():
    for t in [1, 2, 3, 4, 5, 7, 8, 12, 16, 32]:
        for f in range(1, 800):
            expected = _original_val_indices(f, t)
            np.testing.assert_array_equal(sample_test_indices(f, t), expected, err_msg=f"{f=} {t=}")
            np.testing.assert_array_equal(
                sample_test_indices(f, t, num_clips=1, clip_index=0), expected)


def test_multi_clip_hand_computed():
    # F=300, T=8, K=3: sub-segment 12.5 frames, offsets (12.5*(2k+1) - 1) / 2.
    assert sample_test_indices(300, 8, 3, 0).tolist() == [5, 43, 80, 118, 155, 193, 230, 268]
    assert sample_test_indices(300, 8, 3, 1).tolist() == [18, 55, 93, 130, 168, 205, 243, 280]
    assert sample_test_indices(300, 8, 3, 2).tolist() == [30, 68, 105, 143, 180, 218, 255, 293]
    # T = 1, K = 4 splits the whole video: positions 1.25, 3.75, 6.25, 8.75 minus 0.5.
    assert [sample_test_indices(10, 1, 4, k).tolist() for k in range(4)] == [[0], [3], [5], [8]]


def test_multi_clip_distinct_sorted_in_range():
    for t in [1, 2, 8, 16]:
        for k_total in [2, 3, 4, 5, 10]:
            for f in range(t * k_total, 400, 7):  # F >= T*K: room for K distinct views.
                clips = [sample_test_indices(f, t, k_total, k) for k in range(k_total)]
                for clip in clips:
                    assert clip.shape == (t,) and clip.dtype == np.int64
                    assert clip.min() >= 0 and clip.max() <= f - 1
                    assert np.all(np.diff(clip) > 0)
                stacked = np.stack(clips)  # [K, T]
                # Within a segment the views move strictly forward: all distinct.
                assert np.all(np.diff(stacked, axis=0) > 0), (f, t, k_total)
                assert len(set(stacked.ravel().tolist())) == t * k_total


def test_multi_clip_stays_in_range_for_any_length():
    for t in [1, 2, 8]:
        for k_total in [2, 3, 7]:
            for f in range(1, 120):
                for k in range(k_total):
                    clip = sample_test_indices(f, t, k_total, k)
                    assert clip.shape == (t,)
                    assert clip.min() >= 0 and clip.max() <= f - 1
                    assert np.all(np.diff(clip) >= 0)


def test_multi_clip_short_video_falls_back():
    for f, t in [(5, 8), (8, 8), (1, 4)]:
        expected = [i * f // t for i in range(t)]
        for k in range(3):
            assert sample_test_indices(f, t, 3, k).tolist() == expected


def test_odd_clip_count_middle_view_is_single_view():
    for f in range(9, 500, 13):
        np.testing.assert_array_equal(sample_test_indices(f, 8, 3, 1), sample_test_indices(f, 8))


# --- argument checks -------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,match", [
    ({"num_frames": 0, "num_segments": 8}, "num_frames"),
    ({"num_frames": -3, "num_segments": 8}, "num_frames"),
    ({"num_frames": 10, "num_segments": 0}, "num_segments"),
    ({"num_frames": 10, "num_segments": 8, "num_clips": 0}, "num_clips"),
    ({"num_frames": 10, "num_segments": 8, "num_clips": 3, "clip_index": 3}, "clip_index"),
    ({"num_frames": 10, "num_segments": 8, "num_clips": 3, "clip_index": -1}, "clip_index"),
])
def test_test_indices_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_test_indices(**kwargs)


def test_train_indices_validation():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="num_frames"):
        train_indices(0, 8, rng)
    with pytest.raises(ValueError, match="num_segments"):
        train_indices(10, 0, rng)
    with pytest.raises(TypeError):
        train_indices(10.5, 8, rng)


def test_numpy_integer_arguments():
    assert sample_test_indices(np.int64(300), np.int32(8)).tolist() == [
        18, 55, 93, 130, 168, 205, 243, 280]


# --- window (PySlowFast's test sampling: Open-VCLIP, FROSTER) ----------------------------


def _pyslowfast_window(num_frames, t, stride, num_clips, clip_index):
    """`get_start_end_idx(use_offset=True)` and `temporal_sampling`, as PySlowFast writes them,
    with the window in frames (30 fps videos)."""
    import math

    import torch

    clip_size = stride * t
    delta = max(num_frames - clip_size, 0)
    if num_clips == 1:
        start = math.floor(delta / 2)
    else:
        start = clip_index * math.floor(delta / (num_clips - 1))
    index = torch.linspace(start, start + clip_size - 1, t)
    return torch.clamp(index, 0, num_frames - 1).long().numpy()


@pytest.mark.parametrize("num_frames", [1, 50, 127, 128, 129, 300, 1001])
@pytest.mark.parametrize("num_clips", [1, 3])
def test_window_indices_match_pyslowfast(num_frames, num_clips):
    from data_pipeline.sampling import window_indices

    for k in range(num_clips):
        got = window_indices(num_frames, 8, 16, num_clips, k)
        np.testing.assert_array_equal(got, _pyslowfast_window(num_frames, 8, 16, num_clips, k))
        assert got.dtype == np.int64 and got.shape == (8,)


def test_window_clips_span_the_video_from_start_to_end():
    from data_pipeline.sampling import window_indices

    clips = [window_indices(300, 8, 16, 3, k) for k in range(3)]
    assert clips[0][0] == 0 and clips[2][-1] == 299  # first window at the start, last at the end
    assert [c[0] for c in clips] == [0, 86, 172]  # k · ⌊(300 − 128) / 2⌋
    with pytest.raises(ValueError, match="stride"):
        window_indices(300, 8, 0)
