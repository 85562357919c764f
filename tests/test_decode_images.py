"""Tests for data_pipeline.video.decode_rgb / decode_rgb_frames: PIL's pixels, faster."""

import io

import media
import numpy as np
import pytest
from PIL import Image

from data_pipeline import video
from data_pipeline.video import VideoDecodeError, decode_rgb, decode_rgb_frames


@pytest.fixture(scope="module")
def bikes_frame():
    """One real frame of bikes.mp4 (street scene), [272, 640, 3]."""
    return video.read_video_frames(media.bikes_mp4_path(), [100])[0]


def _encode(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG" if "format" not in kwargs else kwargs.pop("format"), **kwargs)
    return buffer.getvalue()


def _pil(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"quality": 90},  # 4:2:0, what prepare and the benchmarks write
        {"quality": 75, "subsampling": 0},  # 4:4:4
        {"quality": 95, "subsampling": 1},  # 4:2:2
        {"quality": 90, "progressive": True},
    ],
)
def test_jpeg_pixels_are_exactly_pils(bikes_frame, kwargs):
    data = _encode(Image.fromarray(bikes_frame), **kwargs)
    out = decode_rgb(data)
    assert out.dtype == np.uint8 and out.shape == bikes_frame.shape
    np.testing.assert_array_equal(out, _pil(data))


def test_grayscale_jpeg_becomes_rgb_as_pil_converts_it(bikes_frame):
    data = _encode(Image.fromarray(bikes_frame).convert("L"), quality=90)
    out = decode_rgb(data)
    assert out.shape == (*bikes_frame.shape[:2], 3)
    np.testing.assert_array_equal(out, _pil(data))


def test_cmyk_jpeg_and_png_go_through_pil(bikes_frame):
    cmyk = _encode(Image.fromarray(bikes_frame).convert("CMYK"), quality=90)
    np.testing.assert_array_equal(decode_rgb(cmyk), _pil(cmyk))
    rgba = np.dstack([bikes_frame, np.full(bikes_frame.shape[:2], 200, np.uint8)])
    png = _encode(Image.fromarray(rgba), format="PNG")
    np.testing.assert_array_equal(decode_rgb(png), bikes_frame)


def test_decodes_into_the_given_array_when_the_size_matches(bikes_frame):
    data = _encode(Image.fromarray(bikes_frame), quality=90)
    out = np.zeros(bikes_frame.shape, np.uint8)
    assert decode_rgb(data, out) is out
    np.testing.assert_array_equal(out, _pil(data))
    wrong = np.zeros((10, 10, 3), np.uint8)
    other = decode_rgb(data, wrong)
    assert other is not wrong and other.shape == bikes_frame.shape and not wrong.any()
    png = _encode(Image.fromarray(bikes_frame), format="PNG")
    out[:] = 0
    assert decode_rgb(png, out) is out  # PIL's route fills it too.
    np.testing.assert_array_equal(out, bikes_frame)


def test_damaged_jpegs_behave_as_with_pil(bikes_frame):
    data = _encode(Image.fromarray(bikes_frame), quality=90)
    # Junk before the end marker: libjpeg only warns; PIL decodes it, so must we.
    junk = data[:-2] + b"\x00\x00\x00" + data[-2:]
    np.testing.assert_array_equal(decode_rgb(junk), _pil(junk))
    # A truncated file: PIL refuses it ("image file is truncated"), so must we.
    with pytest.raises(video.IMAGE_ERRORS):
        decode_rgb(data[: len(data) // 2])
    with pytest.raises(video.IMAGE_ERRORS):
        decode_rgb(b"\xff\xd8 not really a jpeg")


def test_decode_rgb_frames_order_repeats_and_errors():
    frames = [media.make_frame(i, 48, 64) for i in range(5)]
    blobs = [_encode(Image.fromarray(f), quality=95) for f in frames]
    reads = []

    def read(i):
        reads.append(i)
        return blobs[i]

    out = decode_rgb_frames(read, np.array([3, 0, 3, 4]), str, "of x")
    assert out.shape == (4, 48, 64, 3) and out.flags.c_contiguous
    assert media.read_indices(out) == [3, 0, 3, 4]
    assert reads == [0, 3, 4]  # Each distinct frame once, in increasing order.
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[1], _pil(blobs[0]))

    blobs[4] = b"not an image"
    with pytest.raises(VideoDecodeError, match="cannot decode frame 4 of x"):
        decode_rgb_frames(lambda i: blobs[i], np.array([0, 4]), lambda i: f"frame {i} of x", "")
    blobs[4] = _encode(Image.fromarray(media.make_frame(4, 32, 64)), quality=95)
    with pytest.raises(VideoDecodeError, match="frames of x differ in size"):
        decode_rgb_frames(lambda i: blobs[i], np.array([0, 4]), str, "of x")
