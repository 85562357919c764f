"""Tests for data_pipeline.prepare: TFDS array_record shards of JPEG frames, read back."""

import json
import os
import signal
import subprocess
import sys
import time

import media
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipeline import pipeline, prepare, sampling, sources, transforms
from data_pipeline.video import read_video_frames

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = prepare.Settings(short_side=0, videos_per_shard=2)  # Native size: exact indices.


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Five small videos (64x48, 25 fps), two unreadable entries, labels and list."""
    root = tmp_path_factory.mktemp("prepare_videos")
    lines = []
    for i in range(5):
        media.encode_video(root / f"v{i}.mp4", num_frames=20 + i, height=48, width=64)
        lines.append(f"v{i}.mp4 {i % 2}")
        if i == 1:
            (root / "empty.mp4").write_bytes(b"")
            lines.append("empty.mp4 0")
        if i == 3:
            lines.append("missing.mp4 1")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "labels.csv").write_text("id,name\n0,even\n1,odd\n")
    return root


def _prepare(videos, output, **kwargs):
    args = {"root": str(videos), "settings": SMALL, "workers": 0}
    args.update(kwargs)
    return prepare.prepare(
        str(videos / "train.txt"), str(videos / "labels.csv"), str(output), **args
    )


@pytest.fixture(scope="module")
def prepared(videos, tmp_path_factory):
    output = tmp_path_factory.mktemp("prepared")
    summary = _prepare(videos, output)
    return output, summary


def _shard_bytes(builder_dir):
    return {
        p.name: p.read_bytes()
        for p in sorted(builder_dir.iterdir())
        if ".array_record-" in p.name and ".tmp" not in p.name
    }


def test_layout_summary_and_skipped_videos(prepared):
    output, summary = prepared
    builder_dir = output / "videos" / "1.0.0"
    assert summary["entries"] == 7 and summary["written"] == 5
    assert [(s["line"], s["path"]) for s in summary["skipped"]] == [
        (3, "empty.mp4"),
        (6, "missing.mp4"),
    ]
    # Entries 2k, 2k+1 of the list go to shard k, whatever is skipped.
    assert summary["shard_lengths"] == [2, 1, 1, 1]
    assert sorted(_shard_bytes(builder_dir)) == [
        f"videos-train.array_record-0000{k}-of-00004" for k in range(4)
    ]
    for name in ("dataset_info.json", "features.json", "prepare-train.json"):
        assert (builder_dir / name).exists()
    skipped = (builder_dir / "skipped-train.txt").read_text().splitlines()
    assert [line.split("\t")[:2] for line in skipped] == [["3", "empty.mp4"], ["6", "missing.mp4"]]


def test_tfds_reads_the_shards_without_tensorflow(prepared, videos):
    output, _ = prepared
    assert "tensorflow" not in sys.modules
    by_name = tfds.data_source("videos", data_dir=str(output), split="train")
    by_dir = tfds.builder_from_directory(str(output / "videos" / "1.0.0")).as_data_source("train")
    assert len(by_name) == len(by_dir) == 5
    example = by_name[4]
    assert example["path"] == b"v4.mp4" and example["label"] == 0
    assert example["num_frames"] == 24 and example["fps"] == 25
    frames = np.stack(example["video"])  # TFDS decodes every frame: [24, 48, 64, 3]
    assert frames.shape == (24, 48, 64, 3)
    assert media.read_indices(frames) == list(range(24))
    info = tfds.builder_from_directory(str(output / "videos" / "1.0.0")).info
    assert info.features["label"].names == ["even", "odd"]


def test_source_decodes_only_the_sampled_frames_exactly(prepared):
    output, _ = prepared
    source = sources.TfdsClipSource(str(output / "videos" / "1.0.0"), split="train")
    assert source.class_names == ["even", "odd"] and len(source) == 5
    record = source[2]
    assert record["kind"] == "tfds" and record["path"] == "v2.mp4" and record["label"] == 0
    assert isinstance(record["video"], sources.EncodedFrames) and len(record["video"]) == 22
    indices = sampling.train_indices(22, 8, np.random.default_rng(0))
    frames = sources.load_clip(record, lambda f: indices)
    assert frames.shape == (8, 48, 64, 3)
    assert media.read_indices(frames) == indices.tolist()
    same = sources.open_source("tfds:videos", split="train", tfds_data_dir=str(output))
    assert len(same) == 5
    with pytest.raises(ValueError, match="split"):
        sources.open_source(str(output / "videos" / "1.0.0"), split=None)


def test_fast_scan_reads_what_tfds_reads(prepared):
    builder_dir = str(prepared[0] / "videos" / "1.0.0")
    fast = sources.TfdsClipSource(builder_dir, split="train")
    slow = sources.TfdsClipSource(builder_dir, split="train", fast=False)
    for i in range(len(fast)):
        a, b = fast[i], slow[i]
        assert isinstance(b["video"], np.ndarray) and b["video"].dtype == object
        assert {k: a[k] for k in ("path", "label", "num_frames", "kind")} == {
            k: b[k] for k in ("path", "label", "num_frames", "kind")
        }
        assert [a["video"][j] for j in range(len(a["video"]))] == list(b["video"])


def test_parse_example_ranges_matches_the_proto():
    from tensorflow_datasets.proto import tf_example_pb2

    example = tf_example_pb2.Example()
    feature = example.features.feature
    feature["frames"].bytes_list.value.extend([b"", b"a" * 300, b"\x00\xff"])
    feature["ids"].int64_list.value.extend([0, -1, 2**40, 127, 128])
    feature["score"].float_list.value.extend([0.5, -2.25])
    feature["empty"].SetInParent()
    raw = example.SerializeToString()
    fields = sources.parse_example_ranges(raw)
    assert [raw[a:b] for a, b in fields["frames"][1]] == [b"", b"a" * 300, b"\x00\xff"]
    assert fields["ids"] == ("int64", [0, -1, 2**40, 127, 128])
    assert fields["score"] == ("float", [0.5, -2.25])
    assert fields["empty"] == ("bytes", [])
    with pytest.raises((ValueError, IndexError)):
        sources.parse_example_ranges(raw[:-3])


def test_shards_hold_the_same_frames_as_decoding_the_real_video(tmp_path):
    """bikes.mp4 (640x272 H.264, 25 fps, 250 frames) at 5 fps, short side 256, JPEG q90."""
    path = media.bikes_mp4_path()
    (tmp_path / "list.txt").write_text(f"{path} 0\n")
    (tmp_path / "labels.csv").write_text("id,name\n0,riding bikes\n")
    settings = prepare.Settings(short_side=256, fps=5, quality=90)
    prepare.prepare(
        str(tmp_path / "list.txt"),
        str(tmp_path / "labels.csv"),
        str(tmp_path / "out"),
        settings=settings,
    )
    source = sources.TfdsClipSource(str(tmp_path / "out" / "videos" / "1.0.0"), split="list")
    record = source[0]
    assert record["num_frames"] == 50 and record["path"] == path
    picked = sampling.test_indices(50, 8)
    stored = sources.load_clip(record, lambda f: picked)  # [8, 256, 602, 3]
    native = picked * 5  # Frame k at 5 fps is native frame 5k.
    direct = transforms.resize_short_side(read_video_frames(path, native), 256)
    assert stored.shape == direct.shape == (8, 256, 602, 3)
    error = np.abs(stored.astype(np.float64) - direct)
    assert error.mean() < 2.5 and np.percentile(error, 99) < 16  # JPEG q90 error only.


def test_resample_indices():
    np.testing.assert_array_equal(prepare.resample_indices(10, 25, 0), np.arange(10))
    np.testing.assert_array_equal(prepare.resample_indices(10, 25, 30), np.arange(10))
    np.testing.assert_array_equal(prepare.resample_indices(10, 30, 10), [0, 3, 6])
    np.testing.assert_array_equal(prepare.resample_indices(7, 25, 12.5), [0, 2, 4])
    np.testing.assert_array_equal(prepare.resample_indices(1, 30, 1), [0])


def test_pipelines_read_prepared_shards(prepared):
    output, _ = prepared
    builder_dir = str(output / "videos" / "1.0.0")
    common = {
        "batch_size": 2,
        "num_frames": 4,
        "input_size": 32,
        "process_index": 0,
        "process_count": 1,
    }
    batch = next(pipeline.make_train_iterator(builder_dir, split="train", seed=1, **common))
    assert batch["video"].shape == (2, 4, 32, 32, 3) and not batch["bad"].any()
    batches = list(
        pipeline.make_eval_iterator(builder_dir, split="train", num_clips=2, num_crops=3, **common)
    )
    assert np.concatenate([b["mask"] for b in batches]).sum() == 5
    assert batches[0]["video"].shape == (2, 6, 4, 32, 32, 3)


def test_changed_settings_are_refused_and_same_settings_resume(prepared, videos):
    output, _ = prepared
    with pytest.raises(ValueError, match="settings"):
        _prepare(videos, output, settings=prepare.Settings(short_side=0, videos_per_shard=3))
    before = _shard_bytes(output / "videos" / "1.0.0")
    again = _prepare(videos, output)  # Everything is done: nothing is rewritten.
    assert again["written"] == 5 and _shard_bytes(output / "videos" / "1.0.0") == before


def test_a_second_split_joins_the_dataset(prepared, videos, tmp_path):
    output, _ = prepared
    (tmp_path / "val.txt").write_text(f"{videos}/v0.mp4 0\n{videos}/v3.mp4 1\n")
    prepare.prepare(
        str(tmp_path / "val.txt"), str(videos / "labels.csv"), str(output), settings=SMALL
    )
    info = tfds.builder_from_directory(str(output / "videos" / "1.0.0")).info
    assert sorted(info.splits) == ["train", "val"]
    assert len(tfds.data_source("videos", data_dir=str(output), split="val")) == 2
    assert len(tfds.data_source("videos", data_dir=str(output), split="train")) == 5


def test_killed_run_resumes_to_identical_shards(videos, tmp_path):
    """SIGKILL a run mid-way, restart with 2 worker processes: byte-identical shards."""
    reference = tmp_path / "reference"
    settings = prepare.Settings(short_side=96, videos_per_shard=1)  # 7 shards, upscaled.
    _prepare(videos, reference, settings=settings)
    expected = _shard_bytes(reference / "videos" / "1.0.0")
    assert len(expected) == 7

    killed = tmp_path / "killed"
    builder_dir = killed / "videos" / "1.0.0"
    command = [
        sys.executable, "-m", "data_pipeline.prepare",
        f"--list={videos / 'train.txt'}", f"--labels={videos / 'labels.csv'}",
        f"--output={killed}", f"--root={videos}", "--short_side=96",
        "--videos_per_shard=1", "--workers=0",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    # Polls until two shards are done, however long a loaded machine takes to get there; the
    # timeout only guards against a hang.
    try:
        while process.poll() is None:
            if builder_dir.exists() and len(_shard_bytes(builder_dir)) >= 2:
                break
            time.sleep(0.002)
            if time.monotonic() - started > 900:
                raise TimeoutError("prepare wrote fewer than 2 shards in 900 s")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done_at_kill = len(_shard_bytes(builder_dir))
    assert 2 <= done_at_kill < 7, "the run was not interrupted mid-way"
    assert not (builder_dir / "dataset_info.json").exists()
    (builder_dir / "videos-train.array_record-00006-of-00007.tmp-99999").write_bytes(b"junk")

    summary = _prepare(videos, killed, settings=settings, workers=2)
    assert summary["written"] == 5
    assert _shard_bytes(builder_dir) == expected
    assert not list(builder_dir.glob("*.tmp-*"))
    for name in ("dataset_info.json", "features.json", "prepare-train.json"):
        a = json.loads((builder_dir / name).read_text())
        b = json.loads((reference / "videos" / "1.0.0" / name).read_text())
        if name == "prepare-train.json":
            a.pop("builder_dir"), b.pop("builder_dir")
        assert a == b, name
