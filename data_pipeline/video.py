"""Reading frames: from encoded video files (decord or PyAV) and from JPEG frame folders.

Both readers take 0-based frame indices (as produced by ``data_pipeline.sampling``) and
return ``[T, H, W, 3]`` uint8 RGB arrays. Video files are decoded by one of `BACKENDS`:
``"decord"`` (the default, as the original) or ``"pyav"`` (FFmpeg through PyAV, for files
that decord mis-decodes or hangs on: see docs/data_reliability.md). Both number frames
in presentation order and give the same pixels on ordinary files. A decoder's output is
checked: fewer frames, or frames of another shape or type, than asked for is a
`VideoDecodeError`. JPEG images are decoded by simplejpeg
(libjpeg-turbo, the library PIL uses, with the same settings: the same pixels) straight
into the output array; other images, and JPEGs it refuses, by PIL (`decode_rgb`).

Errors are split by what the caller can do about them:

* ``FileNotFoundError``: the file or folder is not there (fix the list file);
* ``VideoDecodeError`` (a ``ValueError``): the bytes are there but are not a decodable
  video / image (empty, truncated, corrupt, no video stream). A data pipeline may skip
  such an example; the message always names the file.
"""

from __future__ import annotations

import bisect
import io
import logging
import os
from collections.abc import Callable, Sequence
from typing import BinaryIO, Protocol

import av
import decord
import numpy as np
import simplejpeg
from decord._ffi.base import DECORDError
from etils import epath
from PIL import Image

# Local path, etils path, URL such as ``gs://bucket/video.mp4``, raw bytes or a binary
# file object.
VideoSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

# What decord raises for unreadable input: DECORDError from C++ checks, RuntimeError when
# the reader cannot be created, AssertionError for a stream that reports 0 frames.
_DECORD_ERRORS = (DECORDError, RuntimeError, AssertionError)

_MAX_MESSAGE_CHARS = 300

_log = logging.getLogger(__name__)

# Tries per frame in the retry pass of `read_video_frames`, each with a fresh reader.
_ATTEMPTS_PER_FRAME = 3


class VideoDecodeError(ValueError):
    """A video or frame image exists but cannot be decoded."""


def _short(error: BaseException) -> str:
    """First line of an error message, trimmed: decord appends whole C++ stack traces."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    return text[:_MAX_MESSAGE_CHARS]


def _is_url(path: str) -> bool:
    return "://" in path


def _resolve(source: VideoSource) -> tuple[str | bytes, str]:
    """Turns a source into what decord takes (local path or bytes) plus a display name.

    Remote paths are read into memory once, so that a retry does not download twice.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), f"<{len(source)} bytes>"
    elif hasattr(source, "read"):
        name = str(getattr(source, "name", "<file object>"))
        data = source.read()
    else:
        path = os.fspath(source)  # A local epath.Path gives a plain local path here.
        if not _is_url(path):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"video file not found: {path}")
            if os.path.getsize(path) == 0:
                raise VideoDecodeError(f"cannot decode video {path}: empty file (0 bytes)")
            return path, path
        try:
            data = epath.Path(path).read_bytes()
        except FileNotFoundError as e:
            raise FileNotFoundError(f"video file not found: {path}") from e
        name = path
    if not data:
        raise VideoDecodeError(f"cannot decode video {name}: empty file (0 bytes)")
    return data, name


def _reader(resolved: str | bytes, name: str) -> decord.VideoReader:
    try:
        if isinstance(resolved, bytes):
            # decord copies the whole stream into its own buffer; a fresh BytesIO per
            # reader keeps retries independent.
            return decord.VideoReader(io.BytesIO(resolved), num_threads=1)
        # One decoding thread: parallelism comes from the data loader's workers, and
        # decord's own threads would oversubscribe the cores.
        return decord.VideoReader(resolved, num_threads=1)
    except _DECORD_ERRORS as e:
        raise VideoDecodeError(f"cannot open video {name}: {_open_failure(e)}") from e


def _open_failure(error: BaseException) -> str:
    """Says in words why decord could not open a file (its own message is terse)."""
    message = _short(error)
    if "cannot find video stream" in message:
        return f"no video stream ({message})"
    if isinstance(error, AssertionError):
        return f"no frames ({message})"
    if isinstance(error, RuntimeError) and not isinstance(error, DECORDError):
        # decord only says "Error reading <path>..."; FFmpeg's reason went to stderr.
        return f"not a readable video container: truncated, corrupt or not a video ({message})"
    return message


def open_video(source: VideoSource) -> decord.VideoReader:
    """Opens a video for decoding with decord.

    Args:
      source: A local path (``str``, ``os.PathLike``, local ``epath.Path``), a remote URL
        or ``epath.Path`` (e.g. ``gs://...``; read fully into memory through
        ``epath.Path.read_bytes``), the encoded bytes, or a binary file object.

    Returns:
      A single-threaded ``decord.VideoReader``.

    Raises:
      FileNotFoundError: The path does not exist.
      VideoDecodeError: The file is empty, not a video, has no video stream or no frames.
    """
    return _reader(*_resolve(source))


class FrameReader(Protocol):
    """An open video, as every backend gives it.

    ``len(reader)`` is the number of frames the backend reports; ``reader.read(indices)``
    decodes the frames at ``indices`` (1-D int64, ascending, unique, in range) into
    ``[len(indices), H, W, 3]`` uint8 RGB and raises `VideoDecodeError` when it cannot.
    """

    def __len__(self) -> int: ...

    def read(self, indices: np.ndarray) -> np.ndarray: ...


# A backend: one of `BACKENDS`, or a picklable callable ``(local path or bytes, display
# name) -> FrameReader`` for another decoder (it crosses into worker processes).
Backend = str | Callable[[str | bytes, str], FrameReader]


class _DecordReader:
    """decord's ``VideoReader``: the frame count is what the container's header says."""

    def __init__(self, resolved: str | bytes, name: str):
        self.name = name
        self._reader = _reader(resolved, name)

    def __len__(self) -> int:
        return len(self._reader)

    def read(self, indices: np.ndarray) -> np.ndarray:
        try:
            return self._reader.get_batch(indices).asnumpy()  # [T, H, W, 3]
        except _DECORD_ERRORS as e:
            raise VideoDecodeError(f"cannot decode frames of video {self.name}: {_short(e)}") from e


class _PyAVReader:
    """FFmpeg through PyAV, numbering frames as decord does (presentation order).

    Opening demuxes every packet of the video stream once (no decoding; decord also
    scans the packets to index its keyframes): the frame count is the number of
    packets actually in the file, never a header's claim, and frame ``i`` is the one
    with the ``i``-th smallest presentation timestamp. Reading seeks to the keyframe at
    or before a frame and decodes forward to it. Files whose packets carry no
    presentation timestamps (AVI stores none: FFmpeg invents them from the decoding
    order, wrong for B-frames) are decoded from the start and numbered in output order.
    """

    def __init__(self, resolved: str | bytes, name: str):
        self.name = name
        self._resolved = resolved
        try:
            self._container = av.open(
                io.BytesIO(resolved) if isinstance(resolved, bytes) else resolved
            )
        except av.FFmpegError as e:
            raise VideoDecodeError(
                f"cannot open video {name}: not a readable video container: truncated, "
                f"corrupt or not a video ({_short(e)})"
            ) from e
        if not self._container.streams.video:
            self._container.close()
            raise VideoDecodeError(f"cannot open video {name}: no video stream")
        self._stream = self._container.streams.video[0]
        # One decoding thread, as for decord: parallelism comes from the data loader.
        self._stream.codec_context.thread_count = 1
        pts, keys = [], []  # per packet; keys: (pts, seek timestamp) of keyframes
        starts = [0]  # Timestamps to seek to for the start of the file.
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0:  # The flushing packet at the end.
                    continue
                pts.append(packet.pts)
                times = [t for t in (packet.pts, packet.dts) if t is not None]
                if times and len(starts) == 1:
                    starts.append(min(times))
                if packet.is_keyframe and packet.pts is not None:
                    keys.append((packet.pts, min(times)))
        except av.FFmpegError as e:
            self._container.close()
            raise VideoDecodeError(f"cannot open video {name}: {_short(e)}") from e
        if not pts:
            self._container.close()
            raise VideoDecodeError(f"cannot open video {name}: no frames")
        self._num_frames = len(pts)
        timed = (
            None not in pts
            and len(set(pts)) == len(pts)
            and not set(self._container.format.name.split(",")) & _UNTIMED_FORMATS
        )
        self._pts = np.sort(np.asarray(pts, np.int64)) if timed else None  # [F]
        keys.sort()
        self._key_pts = [k[0] for k in keys]
        self._key_seek = [k[1] for k in keys]
        self._start = min(starts)  # At or before the first packet.

    def __len__(self) -> int:
        return self._num_frames

    def _frames(self, wanted: frozenset[int] | None = None):
        """Decoded frames from the current position of the demuxer on (then a flush).

        With ``wanted`` (presentation timestamps), frames that no other frame refers to
        are not decoded unless wanted: skipping them on the way to a target is what
        makes seeking as cheap as decord's.
        """
        context = self._stream.codec_context
        for packet in self._container.demux(self._stream):
            skip = "DEFAULT" if wanted is None or packet.pts in wanted else "NONREF"
            if context.skip_frame != skip:
                context.skip_frame = skip
            yield from packet.decode()

    def _seek(self, key: int, wanted: frozenset[int]):
        """Decoded frames from keyframe ``key`` on (from the start of the file if < 0)."""
        timestamp = self._key_seek[key] if key >= 0 else self._start
        self._container.seek(timestamp, stream=self._stream, backward=True, any_frame=False)
        return self._frames(wanted)

    def read(self, indices: np.ndarray) -> np.ndarray:
        try:
            if self._pts is None:
                return self._read_in_output_order(indices)
            return self._read_by_timestamp(indices)
        except av.FFmpegError as e:
            raise VideoDecodeError(f"cannot decode frames of video {self.name}: {_short(e)}") from e

    def _read_by_timestamp(self, indices: np.ndarray) -> np.ndarray:
        out = []
        frames, last_pts = None, None
        wanted = frozenset(self._pts[indices].tolist())
        for index in indices.tolist():
            target = int(self._pts[index])
            key = bisect.bisect_right(self._key_pts, target) - 1
            # Decode on from where the last frame was when the target's keyframe is not
            # past it (same GOP); otherwise seek, which skips the frames in between.
            if frames is None or last_pts >= target or (key >= 0 and self._key_pts[key] > last_pts):
                frames = self._seek(key, wanted)
                frame = _first_at_or_after(frames, target)
                if frame is not None and frame.pts > target and key >= 0:
                    # The demuxer landed past the keyframe (containers seek by their own
                    # index): decode from the start of the file instead.
                    frames = self._seek(-1, wanted)
                    frame = _first_at_or_after(frames, target)
            else:
                frame = _first_at_or_after(frames, target)
            if frame is None:
                raise VideoDecodeError(
                    f"cannot decode frames of video {self.name}: decoding ended before frame "
                    f"{index} of {self._num_frames}"
                )
            last_pts = frame.pts
            if frame.pts != target:
                raise VideoDecodeError(
                    f"cannot decode frames of video {self.name}: the decoder skipped frame "
                    f"{index} (timestamp {target})"
                )
            out.append(frame.to_ndarray(format="rgb24"))
        return np.stack(out)  # [T, H, W, 3]

    def _read_in_output_order(self, indices: np.ndarray) -> np.ndarray:
        self._container.seek(self._start, stream=self._stream, backward=True)
        wanted, out = set(indices.tolist()), {}
        for position, frame in enumerate(self._frames()):
            if position in wanted:
                out[position] = frame.to_ndarray(format="rgb24")
                if len(out) == len(wanted):
                    break
        missing = sorted(wanted - set(out))
        if missing:
            raise VideoDecodeError(
                f"cannot decode frames of video {self.name}: decoding ended before frame "
                f"{missing[0]} of {self._num_frames}"
            )
        return np.stack([out[i] for i in indices.tolist()])  # [T, H, W, 3]


# Containers whose packet timestamps are not presentation times (FFmpeg format names).
_UNTIMED_FORMATS = frozenset({"avi"})


def _first_at_or_after(frames, target: int):
    """The first decoded frame with a timestamp at or after ``target`` (None at the end)."""
    for frame in frames:
        if frame.pts is not None and frame.pts >= target:
            return frame
    return None


BACKENDS = {"decord": _DecordReader, "pyav": _PyAVReader}


def _opener(backend: Backend) -> Callable[[str | bytes, str], FrameReader]:
    if callable(backend):
        return backend
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown video backend {backend!r} (data.video_backend, or --backend); use one "
            f"of {sorted(BACKENDS)}"
        )
    return BACKENDS[backend]


def open_reader(source: VideoSource, backend: Backend = "decord") -> FrameReader:
    """Opens a video with a backend (see `FrameReader`; ``source`` as for `open_video`).

    Raises:
      FileNotFoundError: The path does not exist.
      VideoDecodeError: The file is empty, not a video, has no video stream or no frames.
      ValueError: An unknown backend name.
    """
    opener = _opener(backend)
    return opener(*_resolve(source))


def video_num_frames(source: VideoSource, backend: Backend = "decord") -> int:
    """Number of frames a backend reports for a video (see `open_video` for ``source``)."""
    return len(open_reader(source, backend))


def _checked_indices(indices, num_frames: int, name: str) -> np.ndarray:
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 1 or indices.size == 0:
        raise ValueError(f"indices must be a non-empty 1-D sequence, got shape {indices.shape}")
    bad = indices[(indices < 0) | (indices >= num_frames)]
    if bad.size:
        raise IndexError(
            f"frame indices {bad.tolist()} out of range for video {name} with {num_frames} frames"
        )
    return indices


def checked_frames(frames, num_requested: int, name: str) -> np.ndarray:
    """``frames`` if a decoder returned what was asked: ``[num_requested, H, W, 3]`` uint8.

    Raises:
      VideoDecodeError: Another number of frames, another shape or type, naming the video.
    """
    shape = getattr(frames, "shape", None)
    dtype = getattr(frames, "dtype", None)
    if (
        not isinstance(frames, np.ndarray)
        or frames.ndim != 4
        or shape[0] != num_requested
        or shape[3] != 3
        or dtype != np.uint8
        or 0 in shape
    ):
        got = f"{type(frames).__name__} of shape {shape} and dtype {dtype}"
        raise VideoDecodeError(
            f"cannot decode frames of video {name}: the decoder returned {got} for "
            f"{num_requested} requested frames (expected [{num_requested}, H, W, 3] uint8)"
        )
    return frames


def read_clip(
    source: VideoSource,
    indices_fn: Callable[[int], Sequence[int] | np.ndarray],
    *,
    backend: Backend = "decord",
    tail_fallback: bool = True,
) -> np.ndarray:
    """Opens a video once, picks frame indices from its frame count, decodes them.

    One reader serves both the count and the decode (opening costs as much as decoding
    a few frames). See `read_video_frames` for the decode-failure policy.

    Args:
      source: See `open_video`.
      indices_fn: Maps the frame count F to ``[T]`` 0-based indices in ``[0, F)``; called
        exactly once.
      backend: One of `BACKENDS` or an opener (see `Backend`).
      tail_fallback: See `read_video_frames`.

    Returns:
      ``[T, H, W, 3]`` uint8 RGB frames, in the order of the indices.
    """
    resolved, name = _resolve(source)
    opener = _opener(backend)
    reader = opener(resolved, name)
    indices = _checked_indices(indices_fn(len(reader)), len(reader), name)
    unique, inverse = np.unique(indices, return_inverse=True)  # Decode forward, each once.
    try:
        frames = reader.read(unique)
    except VideoDecodeError as e:
        if not tail_fallback:
            raise
        del reader  # Its decoder is in an error state; the retry needs a fresh one.
        frames = _read_with_clamped_tail(opener, resolved, name, unique, e)
    return checked_frames(frames, len(unique), name)[inverse]  # [T, H, W, 3]


def read_video_frames(
    source: VideoSource,
    indices: Sequence[int] | np.ndarray,
    *,
    tail_fallback: bool = True,
    backend: Backend = "decord",
) -> np.ndarray:
    """Decodes the frames at ``indices`` (0-based, any order, repeats allowed).

    Decode-failure policy. Some real videos report N frames (decord counts packets)
    but fail to decode packets near the end (a cut-off or damaged tail). decord then
    raises for the whole ``get_batch``. Worse, its reader thread keeps pushing packets
    while the decoder thread has no frame ready, and the decoder's error aborts every
    later request, so *when* the error surfaces depends on thread timing: on a busy
    machine a frame well before the damage can fail too, at random. So when the batch
    decode fails and ``tail_fallback`` is set, the requested frames are decoded
    again one at a time in ascending order, each failure retried up to
    ``_ATTEMPTS_PER_FRAME`` times with a freshly opened reader (timing failures rarely
    repeat; real damage always does). From the first frame that still fails on, every
    remaining (later) index is replaced by the last frame that did decode, and a
    warning is logged. A clip needs most of its frames to be genuine to be worth
    using, so if the very first frame fails, or more than half of the requested
    indices would be replaced, `VideoDecodeError` is raised instead. Intact videos
    never take this path; for damaged ones the cut-off point may vary between runs.
    The same policy applies to every backend.

    Args:
      source: See `open_video`.
      indices: ``[T]`` frame indices in ``[0, num_frames)``; negative indices are
        rejected (decord would count them from the end).
      tail_fallback: Whether to attempt the clamped retry described above; if False
        any decoding failure raises `VideoDecodeError`.
      backend: One of `BACKENDS` (``"decord"``, ``"pyav"``) or an opener (`Backend`).

    Returns:
      ``[T, H, W, 3]`` uint8 RGB frames, in the order of ``indices``.

    Raises:
      FileNotFoundError: The path does not exist.
      VideoDecodeError: The video cannot be opened or the frames cannot be decoded, or
        the decoder returned other frames than asked for.
      IndexError: An index is outside ``[0, num_frames)``.
      ValueError: ``indices`` is empty or not one-dimensional.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 1 or indices.size == 0:
        raise ValueError(f"indices must be a non-empty 1-D sequence, got shape {indices.shape}")
    return read_clip(source, lambda _: indices, backend=backend, tail_fallback=tail_fallback)


def _read_with_clamped_tail(
    opener, resolved: str | bytes, name: str, indices: np.ndarray, first_error: BaseException
) -> np.ndarray:
    """The retry pass of `read_video_frames` (see its docstring for the policy).

    ``indices`` are ascending and unique (decoding forward, no seeking back).
    """
    reader = None
    decoded: dict[int, np.ndarray] = {}  # frame index -> [H, W, 3]
    failed_at = None
    for index in indices.tolist():
        for _ in range(_ATTEMPTS_PER_FRAME):
            if reader is None:
                reader = opener(resolved, name)
            try:
                frame = reader.read(np.asarray([index], np.int64))
                decoded[index] = checked_frames(frame, 1, name)[0]
                break
            except VideoDecodeError as e:
                failure = e
                reader = None  # A decoder that has failed stays failed.
        else:
            failed_at = index
            break
    first_cause = first_error.__cause__ or first_error
    if failed_at is None:  # The first failure was only thread timing.
        _log.warning("video %s: decoding succeeded on retry after: %s", name, _short(first_cause))
        return np.stack([decoded[i] for i in indices.tolist()])  # [T, H, W, 3]
    cause = failure.__cause__ or failure
    num_replaced = int(np.count_nonzero(indices >= failed_at))
    if not decoded or 2 * num_replaced > indices.size:
        raise VideoDecodeError(
            f"cannot decode frames of video {name}: frame {failed_at} and later fail "
            f"({num_replaced} of {indices.size} requested frames): {_short(cause)}"
        ) from failure
    last_good = max(decoded)
    _log.warning(
        "video %s: frames from %d on do not decode (%s); %d of %d requested frames "
        "replaced by frame %d",
        name,
        failed_at,
        _short(cause),
        num_replaced,
        indices.size,
        last_good,
    )
    return np.stack([decoded[min(i, last_good)] for i in indices.tolist()])  # [T, H, W, 3]


def read_frame_folder(
    frame_dir: str | os.PathLike,
    indices: Sequence[int] | np.ndarray,
    image_tmpl: str = "img_{:05d}.jpg",
    index_bias: int = 1,
) -> np.ndarray:
    """Loads frames from a folder of images, one file per frame (the TSN layout).

    Frame ``i`` (0-based, as from ``data_pipeline.sampling``) is read from
    ``frame_dir / image_tmpl.format(i + index_bias)``. The default ``index_bias=1`` is
    where the original's 1-based indices went: frame 0 is ``img_00001.jpg``.

    Args:
      frame_dir: Folder with the frames; a local path or any ``epath`` path
        (``gs://...``).
      indices: ``[T]`` 0-based frame indices; repeats are read once.
      image_tmpl: ``str.format`` template of the file names.
      index_bias: Added to each index to form the file number.

    Returns:
      ``[T, H, W, 3]`` uint8 RGB frames: the pixels of ``PIL.Image.convert("RGB")``, as
      the original reads them (see `decode_rgb`).

    Raises:
      FileNotFoundError: The folder or a frame file is missing (names the file).
      VideoDecodeError: A frame file cannot be decoded, or frames differ in size.
      ValueError: ``indices`` is empty or not one-dimensional.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 1 or indices.size == 0:
        raise ValueError(f"indices must be a non-empty 1-D sequence, got shape {indices.shape}")
    folder = epath.Path(frame_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"frame folder not found: {folder}")

    def read(index: int) -> bytes:
        path = folder / image_tmpl.format(index + index_bias)
        # Reading the bytes first separates "missing" (FileNotFoundError, itself an
        # OSError) from "undecodable" (PIL raises OSError subclasses too).
        try:
            return path.read_bytes()
        except FileNotFoundError as e:
            raise FileNotFoundError(f"frame file not found: {path} (frame index {index})") from e

    def describe(index: int) -> str:
        return f"frame image {folder / image_tmpl.format(index + index_bias)}"

    return decode_rgb_frames(read, indices, describe, f"in {folder}")


# JPEG colour spaces that libjpeg-turbo turns into RGB exactly as PIL does (PIL converts
# CMYK/YCCK itself, differently).
_SIMPLEJPEG_COLORSPACES = frozenset({"YCbCr", "Gray", "RGB"})
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def decode_rgb(data: bytes, out: np.ndarray | None = None) -> np.ndarray:
    """Decodes one image (JPEG, PNG, ...) to ``[H, W, 3]`` uint8 RGB.

    JPEGs go through simplejpeg: libjpeg-turbo with PIL's settings (accurate integer DCT,
    smooth chroma upsampling), so the pixels are PIL's, decoded straight into ``out``
    instead of into a PIL image and then copied (that copy costs as much as half the
    decode). Other formats, CMYK JPEGs, and JPEGs that libjpeg-turbo reports as damaged
    go through PIL, which decides as before (it decodes what libjpeg only warns about).

    Args:
      data: The encoded image.
      out: Optional ``[H, W, 3]`` uint8 C-contiguous array to decode into; used (and
        returned) only when the image has that size.

    Returns:
      ``out`` when the image was written into it, otherwise a new array.

    Raises:
      OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError: As PIL raises
      them for data that does not decode (`IMAGE_ERRORS`).
    """
    if data[:2] == b"\xff\xd8":  # JPEG start-of-image marker.
        try:
            height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        except ValueError:
            colorspace = None
        if colorspace in _SIMPLEJPEG_COLORSPACES and height * width <= Image.MAX_IMAGE_PIXELS:
            if out is None or out.shape != (height, width, 3):
                out = np.empty((height, width, 3), np.uint8)
            try:
                simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out)
                return out
            except ValueError:
                pass  # Damaged: PIL decides, as it always did.
    with Image.open(io.BytesIO(data)) as image:
        # convert() forces the full decode; for an RGB image np.asarray does.
        array = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    if out is not None and out.shape == array.shape:
        out[...] = array
        return out
    return array


def decode_rgb_frames(
    read: Callable[[int], bytes],
    indices: np.ndarray,
    describe: Callable[[int], str],
    where: str,
) -> np.ndarray:
    """Decodes the images ``read(i)`` for ``i`` in ``indices`` into ``[T, H, W, 3]`` RGB.

    Each distinct index is read and decoded once, in increasing order, straight into
    the output (`decode_rgb`); repeated indices are copies.

    Args:
      read: Returns the encoded bytes of frame ``i`` (its exceptions pass through).
      indices: ``[T]`` frame indices.
      describe: Names frame ``i`` in errors (``"frame 3 of clip.mp4"``).
      where: Names the clip in the size error (``"in /data/frames/v1"``).

    Raises:
      VideoDecodeError: A frame does not decode, or frames differ in size.
    """
    indices = np.asarray(indices, np.int64)
    unique, first, inverse = np.unique(indices, return_index=True, return_inverse=True)
    out = None
    for index, t in zip(unique.tolist(), first.tolist()):
        data = read(index)
        target = None if out is None else out[t]
        try:
            image = decode_rgb(data, target)
        except IMAGE_ERRORS as e:
            raise VideoDecodeError(f"cannot decode {describe(index)}: {_describe(e)}") from e
        if out is None:
            out = np.empty((len(indices), *image.shape), np.uint8)  # [T, H, W, 3]
            target = out[t]
        elif image.shape != out.shape[1:]:
            shapes = sorted({tuple(out.shape[1:]), image.shape})
            raise VideoDecodeError(f"frames {where} differ in size: {shapes}")
        if image is not target:
            target[...] = image
    for t, first_t in enumerate(first[inverse].tolist()):
        if first_t != t:
            out[t] = out[first_t]  # A repeated index.
    return out


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {_short(error)}"
