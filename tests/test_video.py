"""Tests for data_pipeline.video: video reading (decord, PyAV) and JPEG frame folders."""
import io
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import types

import media
import numpy as np
import pytest
import stub_decoders
from etils import epath

from data_pipeline import video
from data_pipeline.video import (
    VideoDecodeError,
    open_video,
    read_frame_folder,
    read_video_frames,
    video_num_frames,
)

NUM_FRAMES = 30


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def clip_path(media_dir):
    # GOP 12 with 30 frames: three keyframes, so batches need real seeks.
    return media.encode_video(media_dir / "clip.mp4", num_frames=NUM_FRAMES, keyframe_interval=12)


@pytest.fixture(scope="module")
def long_gop_path(media_dir):
    # A single keyframe: every seek has to decode forward from frame 0.
    return media.encode_video(media_dir / "long_gop.mp4", num_frames=50, keyframe_interval=250,
                              height=48, width=80)


@pytest.fixture(scope="module")
def frame_dir(media_dir):
    return media.write_frame_folder(media_dir / "frames", num_frames=10)


def _sequential_decode(path):
    reader = open_video(path)
    return np.stack([reader.next().asnumpy() for _ in range(len(reader))])  # [N, H, W, 3]


# --- decoding --------------------------------------------------------------------------


def test_decodes_requested_frames(clip_path):
    indices = [0, 5, 29, 3, 3, 12, 11]  # Unsorted, repeated, across keyframes.
    frames = read_video_frames(clip_path, indices)
    assert frames.shape == (len(indices), 64, 96, 3) and frames.dtype == np.uint8
    assert media.read_indices(frames) == indices
    assert all(media.is_red_strip_red(f) for f in frames)  # RGB channel order.


def test_all_frames_and_count(clip_path):
    assert video_num_frames(clip_path) == NUM_FRAMES
    assert open_video(clip_path).get_key_indices() == [0, 12, 24]  # The encoder kept the GOP.
    frames = read_video_frames(clip_path, np.arange(NUM_FRAMES))
    assert media.read_indices(frames) == list(range(NUM_FRAMES))


@pytest.mark.parametrize("fixture", ["clip_path", "long_gop_path"])
def test_seeked_batch_equals_sequential_decode(fixture, request):
    path = request.getfixturevalue(fixture)
    sequential = _sequential_decode(path)
    assert media.read_indices(sequential) == list(range(len(sequential)))
    rng = np.random.default_rng(0)
    for _ in range(3):
        indices = rng.integers(len(sequential), size=8)
        np.testing.assert_array_equal(read_video_frames(path, indices), sequential[indices])
    backwards = np.arange(len(sequential))[::-1]
    np.testing.assert_array_equal(read_video_frames(path, backwards), sequential[backwards])


def _real_clip(name):
    return os.path.join(os.path.dirname(media.bikes_mp4_path()), name)


@pytest.mark.parametrize("name", ["clip", "long_gop", "bikes.mp4", "carphone_pristine.mp4"])
def test_backends_decode_the_same_frames(name, clip_path, long_gop_path):
    # The synthetic clips (B-frames, GOP 12 and a single keyframe) and two real H.264
    # clips (25 and 29.97 fps): the same frame count and byte-identical frames from decord
    # and PyAV, for sorted, unsorted and repeated indices across keyframes.
    path = {"clip": clip_path, "long_gop": long_gop_path}.get(name) or _real_clip(name)
    num_frames = video_num_frames(path)
    assert video_num_frames(path, backend="pyav") == num_frames
    rng = np.random.default_rng(0)
    for indices in (
        np.arange(num_frames),
        rng.integers(num_frames, size=10),
        np.asarray([num_frames - 1, 0, num_frames // 2, num_frames // 2, 1]),
    ):
        decord_frames = read_video_frames(path, indices)
        pyav_frames = read_video_frames(path, indices, backend="pyav")
        assert pyav_frames.shape == decord_frames.shape
        np.testing.assert_array_equal(pyav_frames, decord_frames)
        if name in ("clip", "long_gop"):
            assert media.read_indices(pyav_frames) == indices.tolist()


def test_pyav_reads_the_asked_frames_of_an_avi_with_b_frames(media_dir):
    # HMDB51's videos are MPEG-4 Part 2 in AVI with B-frames. AVI stores no presentation
    # timestamps; PyAV numbers frames in the decoder's output order. (decord returns other
    # frames than asked for from such a file: decord#195, docs/data_reliability.md.)
    path = media.encode_avi(media_dir / "xvid.avi", num_frames=40)
    indices = [0, 39, 5, 5, 20, 13, 38]
    assert video_num_frames(path, backend="pyav") == 40
    frames = read_video_frames(path, indices, backend="pyav")
    assert media.read_indices(frames) == indices
    sequential = read_video_frames(path, np.arange(40), backend="pyav")
    assert media.read_indices(sequential) == list(range(40))


def test_unknown_backend_names_the_choices(clip_path):
    with pytest.raises(ValueError, match=r"unknown video backend 'ffmpeg'.*\['decord', 'pyav'\]"):
        read_video_frames(clip_path, [0], backend="ffmpeg")


def test_a_decoder_that_returns_fewer_frames_is_an_error(media_dir, clip_path):
    short = shutil.copy(clip_path, media_dir / "clip_short.mp4")
    expected = r"clip_short.mp4.*returned .*\(3, 64, 96, 3\).* 4 requested"
    with pytest.raises(VideoDecodeError, match=expected):
        read_video_frames(short, [0, 5, 9, 20], backend=stub_decoders.misbehaving)
    # The same opener reads other files as they are.
    frames = read_video_frames(clip_path, [0, 5, 9, 20], backend=stub_decoders.misbehaving)
    assert media.read_indices(frames) == [0, 5, 9, 20]


def test_accepts_sampler_output(clip_path):
    from data_pipeline.sampling import test_indices as sample_test_indices
    indices = sample_test_indices(NUM_FRAMES, 8)
    assert media.read_indices(read_video_frames(clip_path, indices)) == indices.tolist()


# --- sources: bytes, file objects, epath, remote URLs ---------------------------------------


def test_bytes_file_object_and_epath_sources(clip_path):
    indices = [1, 17, 28]
    expected = read_video_frames(clip_path, indices)
    data = _read(clip_path)
    np.testing.assert_array_equal(read_video_frames(data, indices), expected)
    np.testing.assert_array_equal(read_video_frames(bytearray(data), indices), expected)
    np.testing.assert_array_equal(read_video_frames(io.BytesIO(data), indices), expected)
    np.testing.assert_array_equal(read_video_frames(epath.Path(clip_path), indices), expected)
    assert video_num_frames(data) == NUM_FRAMES


def test_remote_url_is_read_through_epath(clip_path, monkeypatch):
    data = _read(clip_path)
    requested = []

    class FakeRemotePath:
        def __init__(self, path):
            requested.append(path)
            self.path = path

        def read_bytes(self):
            if self.path.endswith("missing.mp4"):
                raise FileNotFoundError(self.path)
            return data

    monkeypatch.setattr(video, "epath", types.SimpleNamespace(Path=FakeRemotePath))
    frames = read_video_frames("gs://bucket/videos/clip.mp4", [2, 20])
    assert media.read_indices(frames) == [2, 20]
    assert requested == ["gs://bucket/videos/clip.mp4"]  # Read once, not per reader.
    with pytest.raises(FileNotFoundError, match="gs://bucket/missing.mp4"):
        read_video_frames("gs://bucket/missing.mp4", [0])


# --- errors ---------------------------------------------------------------------------


def test_missing_file(media_dir):
    path = str(media_dir / "nope.mp4")
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_video_frames(path, [0])
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        video_num_frames(path)


def _read(path):
    return pathlib.Path(path).read_bytes()


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def _bad_files(media_dir, clip_path):
    bikes = _read(media.bikes_mp4_path())
    clip = _read(clip_path)
    rng = np.random.default_rng(0)
    return {
        "zero_byte": _write(media_dir / "empty.mp4", b""),
        "truncated_real": _write(media_dir / "bikes_half.mp4", bikes[:len(bikes) // 2]),
        "truncated_encoded": _write(media_dir / "clip_half.mp4", clip[:len(clip) // 2]),
        "random_bytes": _write(media_dir / "random.mp4", rng.bytes(20000)),
        "text": _write(media_dir / "notes.mp4", b"this is not a video\n" * 50),
        "audio_only": media.encode_audio_only(media_dir / "audio_only.m4a"),
    }


BACKENDS = ["decord", "pyav"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["zero_byte", "truncated_real", "truncated_encoded",
                                  "random_bytes", "text", "audio_only"])
def test_undecodable_files(kind, backend, media_dir, clip_path):
    path = _bad_files(media_dir, clip_path)[kind]
    name = os.path.basename(path)
    with pytest.raises(VideoDecodeError, match=name) as info:
        read_video_frames(path, [0], backend=backend)
    assert isinstance(info.value, ValueError)
    with pytest.raises(VideoDecodeError, match=name):
        video_num_frames(path, backend=backend)
    # The same bytes from memory fail the same way (the message names the byte count).
    with pytest.raises(VideoDecodeError):
        read_video_frames(_read(path), [0], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_error_messages_say_what_went_wrong(backend, media_dir, clip_path):
    files = _bad_files(media_dir, clip_path)
    with pytest.raises(VideoDecodeError, match="empty file"):
        read_video_frames(files["zero_byte"], [0], backend=backend)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        read_video_frames(files["audio_only"], [0], backend=backend)
    with pytest.raises(VideoDecodeError, match="not a readable video container"):
        read_video_frames(files["text"], [0], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_index_and_argument_errors(backend, clip_path):
    with pytest.raises(IndexError, match="30"):
        read_video_frames(clip_path, [0, NUM_FRAMES], backend=backend)
    with pytest.raises(IndexError):
        read_video_frames(clip_path, [-1], backend=backend)  # decord would wrap it; we refuse.
    with pytest.raises(ValueError, match="non-empty"):
        read_video_frames(clip_path, [], backend=backend)
    with pytest.raises(ValueError, match="non-empty"):
        read_video_frames(clip_path, [[0, 1]], backend=backend)


# --- damaged tails ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged_tail_paths(media_dir):
    """60-frame videos whose index is intact (faststart) but whose last bytes are junk.

    decord still reports 60 frames for both; "tail" has its last ~2 frames destroyed,
    "half" everything from the middle of the file on.
    """
    path = media.encode_video(media_dir / "faststart.mp4", num_frames=60, faststart=True)
    data = bytearray(_read(path))
    tail, half = bytearray(data), bytearray(data)
    tail[-60:] = b"\xff" * 60
    half[len(half) // 2:] = b"\xff" * (len(half) - len(half) // 2)
    return (_write(media_dir / "damaged_tail.mp4", bytes(tail)),
            _write(media_dir / "damaged_half.mp4", bytes(half)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_damaged_tail_is_clamped_to_last_decodable_frame(backend, damaged_tail_paths, caplog):
    tail_path, _ = damaged_tail_paths
    assert video_num_frames(tail_path, backend=backend) == 60
    indices = [0, 1, 2, 3, 4, 5, 59]
    with caplog.at_level(logging.WARNING):
        frames = read_video_frames(tail_path, indices, backend=backend)
    assert frames.shape == (7, 64, 96, 3)
    # Frame 59 does not decode; the last frame that did (5) stands in for it.
    assert media.read_indices(frames) == [0, 1, 2, 3, 4, 5, 5]
    assert "damaged_tail.mp4" in caplog.text and "replaced" in caplog.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_damaged_tail_without_fallback_raises(backend, damaged_tail_paths):
    tail_path, _ = damaged_tail_paths
    with pytest.raises(VideoDecodeError, match="damaged_tail.mp4"):
        read_video_frames(tail_path, [0, 59], tail_fallback=False, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mostly_undecodable_clip_raises(backend, damaged_tail_paths):
    _, half_path = damaged_tail_paths
    with pytest.raises(VideoDecodeError, match="damaged_half.mp4"):
        read_video_frames(half_path, [0, 45, 50, 55, 59], backend=backend)


# --- real video -------------------------------------------------------------------------


def test_bikes_mp4_decodes():
    from data_pipeline.sampling import test_indices as sample_test_indices
    path = media.bikes_mp4_path()
    num_frames = video_num_frames(path)
    assert num_frames == 250
    frames = read_video_frames(path, sample_test_indices(num_frames, 8))
    assert frames.shape == (8, 272, 640, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # Real content, not a blank frame.


# --- frame folders ----------------------------------------------------------------------


def test_frame_folder_reads_one_based_files(frame_dir):
    indices = [0, 3, 9, 3]
    frames = read_frame_folder(frame_dir, indices)
    assert frames.shape == (4, 64, 96, 3) and frames.dtype == np.uint8
    # Frame 0 is img_00001.jpg, which shows index 0.
    assert media.read_indices(frames) == indices
    assert all(media.is_red_strip_red(f) for f in frames)
    np.testing.assert_array_equal(read_frame_folder(epath.Path(frame_dir), indices), frames)


def test_frame_folder_template_and_bias(media_dir):
    folder = media.write_frame_folder(media_dir / "zero_based", num_frames=5,
                                      image_tmpl="frame{:d}.jpg", index_bias=0)
    frames = read_frame_folder(folder, [0, 4], image_tmpl="frame{:d}.jpg", index_bias=0)
    assert media.read_indices(frames) == [0, 4]


def test_frame_folder_grayscale_becomes_rgb(media_dir):
    from PIL import Image
    folder = media_dir / "grey"
    folder.mkdir()
    Image.fromarray(np.full((8, 6), 77, np.uint8)).save(folder / "img_00001.jpg")
    frames = read_frame_folder(folder, [0])
    assert frames.shape == (1, 8, 6, 3)


def test_frame_folder_errors(media_dir, frame_dir):
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        read_frame_folder(media_dir / "no_such_folder", [0])

    broken = media_dir / "broken"
    shutil.copytree(frame_dir, broken)
    os.remove(broken / "img_00004.jpg")
    with pytest.raises(FileNotFoundError, match="img_00004.jpg"):
        read_frame_folder(broken, [0, 3])  # Index 3 is file 4.
    read_frame_folder(broken, [0, 4])  # Other frames still read.

    jpeg = _read(broken / "img_00002.jpg")
    cases = {"img_00002.jpg": jpeg[:len(jpeg) // 2],  # Truncated JPEG.
             "img_00003.jpg": b"not an image at all",
             "img_00005.jpg": b""}
    for name, data in cases.items():
        _write(broken / name, data)
        index = int(name[4:9]) - 1
        with pytest.raises(VideoDecodeError, match=name):
            read_frame_folder(broken, [0, index])

    with pytest.raises(ValueError, match="non-empty"):
        read_frame_folder(frame_dir, [])


def test_frame_folder_mixed_sizes(media_dir):
    from PIL import Image
    folder = media_dir / "mixed"
    folder.mkdir()
    Image.fromarray(media.make_frame(0)).save(folder / "img_00001.jpg")
    Image.fromarray(media.make_frame(1, height=32, width=48)).save(folder / "img_00002.jpg")
    with pytest.raises(VideoDecodeError, match="differ in size"):
        read_frame_folder(folder, [0, 1])


# --- package boundary -------------------------------------------------------------------


def test_data_pipeline_does_not_import_models():
    code = ("import sys, data_pipeline.video, data_pipeline.sampling, data_pipeline.transforms;"
            "bad = [m for m in sys.modules if m.startswith('actionclip_jax')];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
