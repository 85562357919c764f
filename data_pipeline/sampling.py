"""TSN-style segment sampling: which frames of a video make up one clip.

A video of F frames is cut into T equal segments (T = ``num_segments``) and one frame is
taken from each, so a clip always has exactly T frames whatever the video length. This
follows ActionCLIP's ``datasets/datasets.py`` (``_sample_indices`` for training,
``_get_val_indices`` for testing) with ``seg_length = 1`` and ``loop = False``.

`window_indices` is the other test sampling, PySlowFast's (Open-VCLIP, FROSTER): T frames
spread over a fixed-length window, the clips' windows spread over the video.

All functions return **0-based** frame indices as ``np.int64`` arrays of shape ``[T]``.
The original returns 1-based indices because its JPEG files start at ``img_00001.jpg``;
here the +1 lives in the frame-folder reader (``data_pipeline.video.read_frame_folder``,
``index_bias=1``), so the same indices also address decoded video frames directly.
"""

from __future__ import annotations

import operator

import numpy as np


def _check_counts(num_frames: int, num_segments: int) -> tuple[int, int]:
    # operator.index accepts Python and NumPy integers but rejects floats, so a
    # fractional frame count cannot silently truncate.
    num_frames, num_segments = operator.index(num_frames), operator.index(num_segments)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if num_segments < 1:
        raise ValueError(f"num_segments must be >= 1, got {num_segments}")
    return num_frames, num_segments


def train_indices(num_frames: int, num_segments: int, rng: np.random.Generator) -> np.ndarray:
    """Random training indices: one uniformly drawn frame inside each segment.

    * F <= T (video shorter than the clip): every frame once, plus T - F frames drawn
      uniformly with replacement, all sorted, so the clip stays in temporal order and
      some frames repeat.
    * F > T: segment i spans ``[i*F//T, (i+1)*F//T)`` (integer boundaries, every
      segment non-empty) and contributes one frame drawn uniformly from it.

    Args:
      num_frames: F, the number of frames in the video (>= 1).
      num_segments: T, the number of frames in the clip (>= 1).
      rng: Source of randomness; the caller owns seeding (e.g. per example and epoch).

    Returns:
      ``[T]`` int64, non-decreasing, in ``[0, F)``.
    """
    num_frames, num_segments = _check_counts(num_frames, num_segments)
    if num_frames <= num_segments:
        extra = rng.integers(num_frames, size=num_segments - num_frames)
        return np.sort(np.concatenate([np.arange(num_frames), extra])).astype(np.int64)
    ticks = np.arange(num_segments + 1, dtype=np.int64) * num_frames // num_segments  # [T+1]
    widths = np.diff(ticks)  # [T], each >= 1 because F > T
    return (ticks[:-1] + rng.integers(widths)).astype(np.int64)


def test_indices(
    num_frames: int, num_segments: int, num_clips: int = 1, clip_index: int = 0
) -> np.ndarray:
    """Deterministic test indices: a fixed position inside each segment.

    With ``num_clips == 1`` this is exactly the original's ``_get_val_indices``:

    * T == 1: the middle frame, ``[F // 2]``;
    * F <= T: ``[i*F // T for i in range(T)]`` (repeats frames when F < T);
    * otherwise the centre of each segment, ``int(i*F/T + (F/T - 1)/2)``.

    With ``num_clips = K > 1`` (multi-view testing, which the original does not have),
    each segment of length L = F/T is split into K equal sub-segments and clip k takes
    the centre of sub-segment k, i.e. the continuous position ``i*L + (k + 0.5)*L/K``,
    turned into a frame index like the original does (subtract half a frame, truncate):
    ``int(i*F/T + ((2k + 1)*F/(T*K) - 1) / 2)``, clipped to ``[0, F - 1]``. For K = 1
    the float expression is evaluated with the very same operations as the original's
    (``(2k+1)*F`` and ``T*K`` are exact integers equal to F and T), so the K = 1 case
    reproduces it bit for bit. The K clips are distinct whenever F >= T*K; for shorter
    videos neighbouring clips may share frames. Short videos (F <= T) have no room for
    different views and every clip falls back to the original's short-video rule. For
    T == 1 and K > 1 the whole video is the one segment (the general formula); only
    K == 1 keeps the original's ``F // 2``.

    Args:
      num_frames: F, the number of frames in the video (>= 1).
      num_segments: T, the number of frames in the clip (>= 1).
      num_clips: K, the number of temporal views per video (>= 1).
      clip_index: Which view, ``0 <= clip_index < num_clips``.

    Returns:
      ``[T]`` int64, non-decreasing, in ``[0, F)``.
    """
    num_frames, num_segments = _check_counts(num_frames, num_segments)
    num_clips, clip_index = operator.index(num_clips), operator.index(clip_index)
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if not 0 <= clip_index < num_clips:
        raise ValueError(f"clip_index must be in [0, {num_clips}), got {clip_index}")

    f, t, k = num_frames, num_segments, num_clips
    if t == 1 and k == 1:
        return np.array([f // 2], np.int64)
    if f <= t:
        return np.array([i * f // t for i in range(t)], np.int64)
    # Mirror the original's operation order: (i*F)/T, then (L' - 1)/2.0 with
    # L' = (2k+1)*F/(T*K); int() truncates toward zero like its dtype=int cast.
    offset = ((2 * clip_index + 1) * f / (t * k) - 1) / 2.0
    indices = [int(i * f / t + offset) for i in range(t)]
    # The formula stays inside [0, F) for F > T (the smallest value is > -0.5, which
    # truncates to 0); the clip is a cheap guard against float edge cases.
    return np.clip(np.array(indices, np.int64), 0, f - 1)


def window_indices(
    num_frames: int, num_segments: int, stride: int, num_clips: int = 1, clip_index: int = 0
) -> np.ndarray:
    """SlowFast-style test indices (Open-VCLIP, FROSTER): T frames over a window of T·stride.

    The window of ``T * stride`` frames starts, for clip k of K, at ``k * ((F - W) // (K - 1))``
    (K > 1: the first clip at the start of the video, the last at its end) or at ``(F - W) // 2``
    (K = 1), with ``F - W`` taken as 0 when the video is shorter than the window; its T frames
    are ``linspace(start, start + W - 1, T)``, clipped to the video and truncated, as PySlowFast's
    ``get_start_end_idx`` (``use_offset``) and ``temporal_sampling`` compute them. So the
    frames are about ``(W - 1) / (T - 1)`` apart (18.1 for 8 × 16), not exactly ``stride``.

    PySlowFast sizes the window in time (``stride * T`` frames at a target 30 fps, converted to
    the video's own rate); here it is counted in the video's frames, the same for 30 fps videos.

    Args:
      num_frames: F, the number of frames in the video (>= 1).
      num_segments: T, the number of frames in the clip (>= 1).
      stride: frames between sampled frames in the nominal window (>= 1).
      num_clips: K, the number of temporal views per video (>= 1).
      clip_index: Which view, ``0 <= clip_index < num_clips``.

    Returns:
      ``[T]`` int64, non-decreasing, in ``[0, F)``.
    """
    f, t = _check_counts(num_frames, num_segments)
    stride, k, i = operator.index(stride), operator.index(num_clips), operator.index(clip_index)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if k < 1 or not 0 <= i < k:
        raise ValueError(f"need num_clips >= 1 and 0 <= clip_index < num_clips, got {i} of {k}")
    window = t * stride
    delta = max(f - window, 0)
    start = delta // 2 if k == 1 else i * (delta // (k - 1))
    positions = np.linspace(start, start + window - 1, t)
    return np.clip(positions, 0, f - 1).astype(np.int64)
