"""Tests for data_pipeline.pipeline: grain train/eval iterators, resuming, bad data, to_global."""

import hashlib
import logging
import multiprocessing
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import grain
import jax
import media
import numpy as np
import orbax.checkpoint as ocp
import pytest
import stub_decoders

from data_pipeline import pipeline, sampling, transforms
from data_pipeline.video import read_frame_folder, read_video_frames, video_num_frames

T, S = 4, 32  # Frames per clip and crop side: small, the recipe is the same at 8 and 224.
NUM_GOOD = 6


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Six small videos (20..30 frames, 64x48) and their list file."""
    root = tmp_path_factory.mktemp("pipeline_data")
    lines = []
    for i in range(NUM_GOOD):
        media.encode_video(
            root / f"v{i}.mp4", num_frames=20 + 2 * i, height=48, width=64, keyframe_interval=8
        )
        lines.append(f"v{i}.mp4 {i % 3}\n")
    (root / "train.txt").write_text("".join(lines))
    return root


# One process reading the six videos of `data` at the test's clip size.
_ONE_PROCESS = {"num_frames": T, "input_size": S, "process_index": 0, "process_count": 1}


def _train(data, **kwargs):
    args = {"root": data, "batch_size": 3, "seed": 7, **_ONE_PROCESS, **kwargs}
    return pipeline.make_train_iterator(str(data / "train.txt"), **args)


def _eval(data, **kwargs):
    """Every batch of one evaluation pass over the six videos, batches of 4, one process."""
    args = {"root": data, "batch_size": 4, **_ONE_PROCESS, **kwargs}
    iterator = pipeline.make_eval_iterator(str(data / "train.txt"), **args)
    try:
        return list(iterator)
    finally:
        iterator.close()


def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


def _expected_train_clip(path, seed, position, randaug=(0, 9)):
    """The documented recipe, recomputed from scratch for one sample."""
    rng = np.random.default_rng([seed, position])
    indices = sampling.train_indices(video_num_frames(path), T, rng)
    frames = read_video_frames(path, indices)
    if randaug[0]:
        frames = transforms.rand_augment_clip(frames, rng, *randaug)
    return transforms.train_geometric(frames, rng, input_size=S, flip=True)


def _assert_batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


# --- training ---------------------------------------------------------------------------


@pytest.mark.parametrize("randaug", [(0, 9), (2, 9)])
def test_train_batches_follow_the_recipe_exactly(data, randaug):
    batches = _take(_train(data, randaug_n=randaug[0], randaug_m=randaug[1]), 2)
    for k, batch in enumerate(batches):
        assert batch["video"].shape == (3, T, S, S, 3) and batch["video"].dtype == np.uint8
        assert batch["label"].dtype == np.int32 and batch["index"].dtype == np.int64
        assert batch["mask"].dtype == np.bool_ and batch["mask"].all()
        assert batch["bad"].dtype == np.int32 and not batch["bad"].any()
        for j in range(3):
            index = int(batch["index"][j])
            assert batch["label"][j] == index % 3
            expected = _expected_train_clip(str(data / f"v{index}.mp4"), 7, 3 * k + j, randaug)
            np.testing.assert_array_equal(batch["video"][j], expected)


def test_the_video_backend_setting_reaches_the_decoder(data):
    # PyAV, in decoder processes: the same batches as decord in the loading thread (the
    # two decode the test videos to the same pixels).
    reference = _take(_train(data), 2)
    iterator = _train(data, video_backend="pyav", decode_timeout_s=60)
    try:
        _assert_batches_equal(_take(iterator, 2), reference)
    finally:
        iterator.close()
    with pytest.raises(ValueError, match="unknown video backend 'ffmpeg'"):
        _train(data, video_backend="ffmpeg")


def test_epochs_are_reshuffled_permutations_and_seeded(data):
    batches = _take(_train(data), 8)  # 4 epochs of 6 videos.
    order = np.concatenate([b["index"] for b in batches]).reshape(4, NUM_GOOD)
    for epoch in order:
        assert sorted(epoch.tolist()) == list(range(NUM_GOOD))
    assert len({tuple(epoch) for epoch in order}) > 1  # Each epoch has its own order.
    again = np.concatenate([b["index"] for b in _take(_train(data), 8)]).reshape(4, NUM_GOOD)
    np.testing.assert_array_equal(order, again)
    other = np.concatenate([b["index"] for b in _take(_train(data, seed=8), 8)])
    assert not np.array_equal(order.ravel(), other)


def test_processes_read_disjoint_parts_of_the_same_global_stream(data):
    single = _take(_train(data, batch_size=1), 12)  # Positions 0..11 of the global stream.
    for p in range(2):
        local = _take(_train(data, batch_size=1, process_index=p, process_count=2), 6)
        for k, batch in enumerate(local):
            # Local position k of process p is global position p + 2k, clip included.
            _assert_batches_equal([batch], [single[p + 2 * k]])
    # So in each epoch the two processes together read every video once.
    indices = np.concatenate([b["index"] for b in single]).reshape(2, NUM_GOOD)
    assert all(sorted(e.tolist()) == list(range(NUM_GOOD)) for e in indices)


def test_start_position_restarts_the_same_stream_under_another_layout(data):
    single = _take(_train(data, batch_size=2), 6)  # Global positions 0..11.
    # Restart at position 6 with two processes: process p gets positions 6 + p + 2k.
    for p in range(2):
        local = _take(
            _train(data, batch_size=1, start_position=6, process_index=p, process_count=2), 3
        )
        for k, batch in enumerate(local):
            g = 6 + p + 2 * k
            row = {key: value[g % 2 : g % 2 + 1] for key, value in single[g // 2].items()}
            _assert_batches_equal([batch], [row])


def test_resuming_mid_epoch_yields_exactly_the_remaining_batches(data):
    iterator = _train(data, batch_size=4)  # 6 videos, batches of 4: epochs cut batches.
    _take(iterator, 1)
    state = iterator.get_state()
    rest = _take(iterator, 3)
    resumed = _train(data, batch_size=4)
    resumed.set_state(state)
    _assert_batches_equal(_take(resumed, 3), rest)


def test_iterator_state_is_saved_with_orbax_next_to_the_model(data, tmp_path):
    iterator = _train(data)
    _take(iterator, 3)
    params = {"w": np.arange(6.0, dtype=np.float32).reshape(2, 3)}
    with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
        manager.save(
            3,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(params),
                data=grain.checkpoint.CheckpointSave(iterator),
            ),
        )
        manager.wait_until_finished()
    rest = _take(iterator, 3)  # Batches 3, 4, 5: the middle of the second epoch and on.

    fresh = _train(data)
    with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
        restored = manager.restore(
            manager.latest_step(),
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(params),
                data=grain.checkpoint.CheckpointRestore(fresh),
            ),
        )
    np.testing.assert_array_equal(restored["state"]["w"], params["w"])
    _assert_batches_equal(_take(fresh, 3), rest)


def _row_digests(batches):
    return sorted(
        (int(b["index"][j]), hashlib.sha256(b["video"][j].tobytes()).hexdigest())
        for b in batches
        for j in range(len(b["index"]))
    )


def test_worker_processes_give_the_same_clips_and_resume(data):
    reference = _take(_train(data, batch_size=2), 4)
    iterator = _train(data, batch_size=2, worker_count=2)
    try:
        first = _take(iterator, 2)
        state = iterator.get_state()
        rest = _take(iterator, 2)
    finally:
        iterator.close()
    # Workers batch their own slices, so batch composition depends on the worker count;
    # after an even number of batches the same samples came out, with identical clips.
    assert _row_digests(first + rest) == _row_digests(reference)
    resumed = _train(data, batch_size=2, worker_count=2)
    try:
        resumed.set_state(state)
        _assert_batches_equal(_take(resumed, 2), rest)
    finally:
        resumed.close()


# --- bad data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_data(data, tmp_path_factory):
    """A list mixing readable entries with every kind of unreadable one."""
    root = tmp_path_factory.mktemp("bad_data")
    for i in range(3):
        (root / f"v{i}.mp4").symlink_to(data / f"v{i}.mp4")
    (root / "empty.mp4").write_bytes(b"")
    clip = (data / "v5.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(clip[: len(clip) // 2])
    (root / "random.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    media.write_frame_folder(root / "frames_ok", num_frames=10, height=48, width=64)
    media.write_frame_folder(root / "frames_gap", num_frames=10, height=48, width=64)
    for i in (1, 2):  # The whole first segment of a 4-frame clip: every clip needs one.
        (root / "frames_gap" / f"img_{i:05d}.jpg").unlink()
    media.write_frame_folder(root / "frames_corrupt", num_frames=10, height=48, width=64)
    for i in range(1, 11):
        (root / "frames_corrupt" / f"img_{i:05d}.jpg").write_bytes(b"\xff\xd8 broken")
    entries = [
        ("v0.mp4 0", True),
        ("missing.mp4 1", False),
        ("empty.mp4 2", False),
        ("v1.mp4 1", True),
        ("truncated.mp4 0", False),
        ("random.mp4 1", False),
        ("frames_ok 10 2", True),
        ("frames_missing 10 0", False),
        ("frames_gap 10 1", False),
        ("frames_corrupt 10 2", False),
        ("v2.mp4 2", True),
    ]
    (root / "list.txt").write_text("".join(line + "\n" for line, _ in entries))
    return root, [good for _, good in entries]


def _expected_any_clip(root, line, seed, position):
    path, *rest = line.split()
    rng = np.random.default_rng([seed, position])
    if len(rest) == 2:
        frames = read_frame_folder(root / path, sampling.train_indices(int(rest[0]), T, rng))
    else:
        full = str(root / path)
        frames = read_video_frames(full, sampling.train_indices(video_num_frames(full), T, rng))
    return transforms.train_geometric(frames, rng, input_size=S, flip=True)


@pytest.mark.parametrize("decode_timeout_s", [0, 60])
def test_bad_samples_are_replaced_flagged_counted_and_logged_once(
    bad_data, caplog, monkeypatch, decode_timeout_s
):
    # With a time limit the videos decode in a decoder process: the same clips and errors.
    root, good = bad_data
    lines = (root / "list.txt").read_text().splitlines()
    n = len(lines)
    caplog.set_level(logging.WARNING)
    # A process logs each path once; each parametrization counts its own messages.
    monkeypatch.setattr(pipeline, "_reported_paths", set())
    iterator = pipeline.make_train_iterator(
        str(root / "list.txt"),
        root=root,
        batch_size=n,
        num_frames=T,
        input_size=S,
        seed=3,
        process_index=0,
        process_count=1,
        decode_timeout_s=decode_timeout_s,
    )
    for epoch, batch in enumerate(_take(iterator, 2)):
        assert sorted(batch["index"].tolist()) == list(range(n))
        assert int(batch["bad"].sum()) == good.count(False)  # The count for the metrics.
        for j, index in enumerate(batch["index"].tolist()):
            assert batch["bad"][j] == (not good[index])
            # A bad sample is replaced by the next readable one, with this position's draws.
            source = next(k % n for k in range(index, index + n) if good[k % n])
            expected = _expected_any_clip(root, lines[source], 3, epoch * n + j)
            np.testing.assert_array_equal(batch["video"][j], expected)
            assert batch["label"][j] == int(lines[source].split()[-1])
    messages = [r.getMessage() for r in caplog.records if "unreadable sample" in r.getMessage()]
    assert len(messages) == good.count(False)  # Once per path, although seen twice.
    for line, ok in zip(lines, good):
        if not ok:
            assert sum(f"/{line.split()[0]})" in m for m in messages) == 1, line


def test_videos_that_hang_crash_or_lie_are_replaced_flagged_and_counted(data, tmp_path, caplog):
    # A decoder that never returns (decord#373), one that dies, and one that returns fewer
    # frames than asked for: each sample is unreadable, replaced and counted, the run goes
    # on, and the log says which file and what happened.
    names = ["v0.mp4", "v1_hang.mp4", "v2.mp4", "v3_crash.mp4", "v4_short.mp4", "v5.mp4"]
    for i, name in enumerate(names):
        shutil.copy(data / f"v{i}.mp4", tmp_path / name)
    (tmp_path / "list.txt").write_text("".join(f"{name} {i % 3}\n" for i, name in enumerate(names)))
    caplog.set_level(logging.WARNING)
    iterator = pipeline.make_train_iterator(
        str(tmp_path / "list.txt"),
        root=tmp_path,
        batch_size=len(names),
        seed=5,
        decode_timeout_s=5,  # Seconds: a tiny clip decodes in milliseconds.
        video_backend=stub_decoders.misbehaving,
        **_ONE_PROCESS,
    )
    try:
        batch = next(iterator)
    finally:
        iterator.close()
    good = [not any(b in n for b in stub_decoders.BEHAVIOURS) for n in names]
    lines = (tmp_path / "list.txt").read_text().splitlines()
    assert sorted(batch["index"].tolist()) == list(range(len(names)))
    for j, index in enumerate(batch["index"].tolist()):
        assert batch["bad"][j] == (not good[index])
        source = next(k for k in range(index, index + len(names)) if good[k % len(names)])
        expected = _expected_any_clip(tmp_path, lines[source % len(names)], 5, j)
        np.testing.assert_array_equal(batch["video"][j], expected)
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert "v1_hang.mp4: decoding took longer than the time limit of 5 s" in log
    assert "v3_crash.mp4: the decoder process died (signal 9)" in log
    assert "v4_short.mp4: the decoder returned" in log


def test_strict_mode_fails_fast_naming_the_file(bad_data):
    root, _ = bad_data
    iterator = pipeline.make_train_iterator(
        str(root / "list.txt"),
        root=root,
        batch_size=11,
        num_frames=T,
        input_size=S,
        strict=True,
        process_index=0,
        process_count=1,
    )
    with pytest.raises(pipeline.BadSampleError, match="strict mode"):
        next(iterator)


def test_only_unreadable_data_is_an_error(tmp_path):
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 0\n")
    iterator = pipeline.make_train_iterator(
        str(tmp_path / "list.txt"),
        root=tmp_path,
        batch_size=1,
        num_frames=T,
        input_size=S,
        process_index=0,
        process_count=1,
    )
    with pytest.raises(pipeline.BadSampleError, match="all unreadable"):
        next(iterator)


# --- evaluation -------------------------------------------------------------------------


@pytest.mark.parametrize("num_clips, num_crops", [(2, 3), (1, 1)])
def test_eval_views_follow_the_test_recipe(data, num_clips, num_crops):
    batches = _eval(data, num_clips=num_clips, num_crops=num_crops)
    assert len(batches) == 2 == pipeline.eval_num_batches(NUM_GOOD, 4, 1)
    views = num_clips * num_crops
    index = np.concatenate([b["index"] for b in batches])
    mask = np.concatenate([b["mask"] for b in batches])
    assert index.tolist() == [0, 1, 2, 3, 4, 5, -1, -1]
    assert mask.tolist() == [True] * 6 + [False] * 2
    scale = S * 256 // 224
    for i in range(NUM_GOOD):
        batch, row = batches[i // 4], i % 4
        assert batch["video"].shape == (4, views, T, S, S, 3)
        path = str(data / f"v{i}.mp4")
        num_frames = video_num_frames(path)
        expected = []
        for k in range(num_clips):
            frames = read_video_frames(path, sampling.test_indices(num_frames, T, num_clips, k))
            frames = transforms.resize_short_side(frames, scale)
            if num_crops == 3:
                expected.extend(transforms.three_crops(frames, S))
            else:
                expected.append(transforms.center_crop(frames, S))
        np.testing.assert_array_equal(batch["video"][row], np.stack(expected))
    assert not batches[1]["video"][2:].any()  # Padding rows are zeros.


def test_eval_counts_every_readable_video_once_across_processes(bad_data):
    root, good = bad_data
    n, batch_size = len(good), 2
    seen = []
    for p in range(3):
        batches = list(
            pipeline.make_eval_iterator(
                str(root / "list.txt"),
                root=root,
                batch_size=batch_size,
                num_frames=T,
                input_size=S,
                process_index=p,
                process_count=3,
            )
        )
        # Every process yields the same number of batches, or a collective would hang.
        assert len(batches) == pipeline.eval_num_batches(n, batch_size, 3) == 2
        for b in batches:
            seen += list(zip(b["index"].tolist(), b["mask"].tolist(), b["bad"].tolist()))
    counted = sorted(i for i, m, _ in seen if m)
    assert counted == [i for i in range(n) if good[i]]
    assert sorted(i for i, _, bad in seen if bad) == [i for i in range(n) if not good[i]]
    assert sorted(i for i, _, _ in seen if i >= 0) == list(range(n))


def test_eval_batches_are_full_and_the_same_with_worker_processes(data):
    # Workers get whole batches: with two or three workers the 6 videos + 2 padding rows
    # still come as two batches of 4 (split per worker they would be 3 + 3 + 1 + 1, ragged
    # batches that a mesh of 4 or 8 devices cannot shard).
    reference = _eval(data)
    assert [b["index"].tolist() for b in reference] == [[0, 1, 2, 3], [4, 5, -1, -1]]
    for workers in (2, 3):
        _assert_batches_equal(_eval(data, worker_count=workers), reference)


# --- processes left behind ----------------------------------------------------------------

_CHILD = str(pathlib.Path(__file__).with_name("pipeline_child.py"))


def _group(pgid) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def _child_env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def test_no_process_outlives_a_pipeline_killed_with_sigkill(data):
    # A process reading with 2 grain workers, each decoding in a decoder process, is
    # killed with SIGKILL: its workers, their decoder processes and Python's resource
    # tracker must all exit by themselves, within seconds.
    proc = subprocess.Popen(
        [sys.executable, _CHILD, "serve", str(data), "2", "60"],
        stdout=subprocess.PIPE,
        env=_child_env(),
        start_new_session=True,
    )
    try:
        assert proc.stdout.readline().strip() == b"ready"
        members = _group(proc.pid)
        assert len(members) >= 4, members  # The process, 2 workers, decoder processes.
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30  # Liveness, not speed: the watch polls every 0.5 s.
        while _group(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _group(proc.pid) == []
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.stdout.close()


class _HalfWrittenBatch:
    """A grain iterator whose worker died while writing a batch: grain's reader waits forever."""

    def __init__(self):
        self.release = threading.Event()

    def __next__(self):
        self.release.wait()
        raise StopIteration

    def close(self):
        raise AssertionError("grain's close would wait for the reading thread forever")


def test_a_reader_waiting_on_a_killed_worker_raises_instead_of_waiting_forever():
    # A process under grain's worker name, killed (as the OOM killer would) while the reader
    # waits for a batch that will never be complete.
    stuck = _HalfWrittenBatch()
    batches = pipeline.WatchedIterator(stuck, "training data")
    worker = multiprocessing.get_context("spawn").Process(
        target=time.sleep, args=(600,), name="grain-process-prefetch-test", daemon=True
    )
    worker.start()  # as grain starts its workers: after the iterator is made
    killer = threading.Timer(2 * batches.POLL_S, worker.kill)
    killer.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(pipeline.DataWorkerError) as err:
            next(batches)
        assert time.monotonic() - t0 < 60  # liveness: it polls every POLL_S
        assert str(err.value).startswith(
            "a grain worker process of the training data was killed by SIGKILL"
        ), err.value
        assert "lower data.workers" in str(err.value)
        batches.close()  # returns, without the grain iterator's close
        with pytest.raises(pipeline.DataWorkerError):
            next(batches)
    finally:
        killer.cancel()
        worker.kill()
        worker.join()
        stuck.release.set()


@pytest.mark.slow  # Three pipelines with worker processes and JAX, in a subprocess.
def test_a_careless_exit_leaks_no_shared_memory(data):
    # With 0, 1 and 2 workers: batches kept referenced (also zero-copy by JAX arrays, and
    # in a reference cycle), iterators never closed; the exit must still be clean. grain's
    # shared memory used to be reported leaked here ("There appear to be N leaked
    # shared_memory objects").
    run = subprocess.run(
        [sys.executable, _CHILD, "exit", str(data), "0,1,2", "0"],
        check=False,
        capture_output=True,
        text=True,
        env=_child_env(),
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("done") == 3
    assert "leaked" not in run.stderr and "resource_tracker" not in run.stderr, run.stderr[-3000:]


# --- to_global --------------------------------------------------------------------------


def test_to_global_assembles_the_batch_over_the_mesh():
    devices = jax.devices()
    mesh = jax.sharding.Mesh(np.array(devices), ("data",))
    b = 2 * len(devices)
    batch = {
        "video": np.arange(b * 2 * 3, dtype=np.uint8).reshape(b, 2, 3),
        "label": np.arange(b, dtype=np.int32),
        "mask": np.ones(b, bool),
    }
    out = pipeline.to_global(batch, mesh)
    assert out["video"].shape == (b, 2, 3) and out["label"].dtype == np.int32
    assert out["video"].sharding.spec == jax.sharding.PartitionSpec(("data",))
    np.testing.assert_array_equal(np.asarray(out["video"]), batch["video"])
    np.testing.assert_array_equal(np.asarray(out["mask"]), batch["mask"])
