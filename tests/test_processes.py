"""Tests for data_pipeline.processes: decoding in a killable process, children that die with
their parent."""

import logging
import os
import pathlib
import shutil
import threading
import time

import media
import numpy as np
import pytest
import stub_decoders

from data_pipeline import processes, video

# Long enough for a tiny clip to decode on a loaded 2-core machine, short enough for a test
# to wait out: only the stub that never returns reaches it.
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("processes")
    good = media.encode_video(d / "good.mp4", num_frames=30, keyframe_interval=12)
    names = ("hang", "crash", "short")
    return {"good": good, **{n: shutil.copy(good, d / f"clip_{n}.mp4") for n in names}}


def _gone(pid: int) -> bool:
    """True when the process no longer exists (or is a zombie nobody reaped yet)."""
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _wait_until(condition, timeout_s=30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_decoder_process_gives_the_frames_of_this_process(clips):
    counts = []

    def indices_fn(num_frames):
        counts.append(num_frames)  # Called here, once, with the count from the child.
        return np.asarray([29, 0, 12, 12, 5])

    decoder = processes.VideoDecoder("decord", TIMEOUT_S)
    frames = decoder(clips["good"], indices_fn)
    assert counts == [30]
    np.testing.assert_array_equal(
        frames, video.read_video_frames(clips["good"], [29, 0, 12, 12, 5])
    )
    assert decoder.decoder_pid() not in (None, os.getpid())
    frames[0, 0, 0] = 0  # Writable, like a frame decoded here.


def test_a_hung_decode_is_killed_and_the_next_sample_gets_a_new_process(clips):
    decoder = processes.VideoDecoder(stub_decoders.misbehaving, TIMEOUT_S)
    decoder(clips["good"], lambda n: [0])
    pid = decoder.decoder_pid()
    decoder.timeout_s = 2.0  # Only the sample that never ends waits this out.
    with pytest.raises(
        processes.DecodeTimeoutError, match=r"clip_hang.mp4.*time limit of 2 s"
    ) as e:
        decoder(clips["hang"], lambda n: [0, 1])
    decoder.timeout_s = TIMEOUT_S
    assert isinstance(e.value, video.VideoDecodeError)  # Bad data for the pipeline.
    assert _gone(pid)
    assert decoder.decoder_pid() is None
    frames = decoder(clips["good"], lambda n: [3])
    assert media.read_indices(frames) == [3]
    assert decoder.decoder_pid() != pid


def test_a_decoder_that_dies_is_a_bad_sample(clips):
    decoder = processes.VideoDecoder(stub_decoders.misbehaving, TIMEOUT_S)
    with pytest.raises(
        video.VideoDecodeError, match=r"clip_crash.mp4.*decoder process died \(signal 9\)"
    ):
        decoder(clips["crash"], lambda n: [0])
    assert media.read_indices(decoder(clips["good"], lambda n: [7])) == [7]


def test_a_decoder_that_returns_fewer_frames_is_a_bad_sample(clips):
    decoder = processes.VideoDecoder(stub_decoders.misbehaving, TIMEOUT_S)
    with pytest.raises(video.VideoDecodeError, match=r"clip_short.mp4.*returned.*2 requested"):
        decoder(clips["short"], lambda n: [0, 1])


def test_a_decoder_process_that_grows_past_its_memory_limit_is_replaced(clips, tmp_path):
    # decord#197/#208 in miniature: every read keeps 128 MiB. Past the limit the process
    # is replaced after its sample; no sample is lost.
    leak = shutil.copy(clips["good"], tmp_path / "clip_leak.mp4")
    decoder = processes.VideoDecoder(stub_decoders.misbehaving, TIMEOUT_S, memory_limit_mb=400)
    pids = []
    for i in range(6):
        assert media.read_indices(decoder(leak, lambda n, i=i: [i])) == [i]
        pids.append(decoder.decoder_pid())
    # Some ~100 MiB to start, +128 MiB a sample: each process serves 2 or 3 samples.
    assert None in pids and pids[0] is not None
    assert 2 <= pids.count(None) <= 3


def test_errors_and_warnings_cross_over_as_they_are(clips, tmp_path, caplog):
    decoder = processes.VideoDecoder("pyav", TIMEOUT_S)
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        decoder(str(tmp_path / "nope.mp4"), lambda n: [0])
    with pytest.raises(IndexError, match="out of range"):
        decoder(clips["good"], lambda n: [n])
    (tmp_path / "text.mp4").write_bytes(b"not a video\n" * 50)
    with pytest.raises(video.VideoDecodeError, match="not a readable video container"):
        decoder(str(tmp_path / "text.mp4"), lambda n: [0])
    # A damaged tail: the child's warning is logged here, by the logger that wrote it.
    data = bytearray(
        pathlib.Path(media.encode_video(tmp_path / "f.mp4", 60, faststart=True)).read_bytes()
    )
    data[-60:] = b"\xff" * 60
    (tmp_path / "tail.mp4").write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        frames = decoder(str(tmp_path / "tail.mp4"), lambda n: [0, 5, 59])
    assert media.read_indices(frames) == [0, 5, 5]
    assert any(
        r.name == "data_pipeline.video" and "tail.mp4" in r.getMessage() for r in caplog.records
    )


def test_decoder_processes_end_with_their_thread(clips):
    decoder = processes.VideoDecoder("decord", TIMEOUT_S)
    pids = []

    def decode():
        decoder(clips["good"], lambda n: [0])
        pids.append(decoder.decoder_pid())

    thread = threading.Thread(target=decode)
    thread.start()
    thread.join()
    assert pids and pids[0] is not None
    assert _wait_until(lambda: _gone(pids[0]))
    assert decoder.decoder_pid() is None  # This thread has none of its own.


def test_timeout_zero_decodes_in_this_thread_and_bad_settings_fail_early(clips):
    decoder = processes.VideoDecoder("pyav", 0)
    assert media.read_indices(decoder(clips["good"], lambda n: [4])) == [4]
    assert decoder.decoder_pid() is None
    with pytest.raises(ValueError, match="unknown video backend"):
        processes.VideoDecoder("nope", 1)
    with pytest.raises(ValueError, match="timeout_s"):
        processes.VideoDecoder("decord", -1)
