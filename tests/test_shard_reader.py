"""Tests for data_pipeline.shard_reader: records of uncompressed array_record files, mapped."""

import pickle

import media
import numpy as np
import pytest
from array_record.python import array_record_module

from data_pipeline import prepare, shard_reader, sources

# Record sizes that put chunk headers, chunk data and record bytes across the 64 KiB block
# boundaries at many offsets: empty and tiny records, sizes around a block, and larger ones.
SIZES = [0, 1, 2, 5, 17, 300, 65_400, 65_470, 65_490, 65_512, 65_536, 9, 131_000, 24, 40]
SIZES += np.random.default_rng(0).integers(0, 200_000, 25).tolist()


def _records():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in SIZES]


def _write(path, records, options):
    writer = array_record_module.ArrayRecordWriter(str(path), options)
    for record in records:
        writer.write(record)
    writer.close()
    return str(path)


@pytest.mark.parametrize(
    "options", ["group_size:1,uncompressed", "group_size:1,uncompressed,pad_to_block_boundary:true"]
)
def test_records_are_array_record_readers_records(tmp_path, options):
    records = _records()
    path = _write(tmp_path / "a.array_record", records, options)
    reader = array_record_module.ArrayRecordReader(path)
    assert reader.read(list(range(len(records)))) == records
    file = shard_reader.RecordFile(path)
    for i in reversed(range(len(records))):  # The scan runs ahead once, then is reused.
        record = file.record(i)
        assert isinstance(record, shard_reader.SplicedRecord) and len(record) == len(records[i])
        assert record[0 : len(record)] == records[i]
    big = file.record(SIZES.index(131_000))
    expected = records[SIZES.index(131_000)]
    assert big[65_000:66_000] == expected[65_000:66_000]  # across block headers
    assert big[-3:] == expected[-3:] and big[5:2] == b""
    assert big[0] == expected[0] and big[-1] == expected[-1] and big[70_000] == expected[70_000]
    with pytest.raises(IndexError):
        big[len(expected)]
    with pytest.raises(ValueError, match="contiguous"):
        big[::2]


@pytest.mark.parametrize(
    "options",
    [
        "group_size:1",  # array_record's default compression (zstd): TFDS-written shards
        "group_size:1,brotli",
        "group_size:2,uncompressed",
        "group_size:1,transpose:true,uncompressed",
    ],
)
def test_other_layouts_are_left_to_array_record(tmp_path, options):
    path = _write(tmp_path / "b.array_record", _records()[:5], options)
    file = shard_reader.RecordFile(path)
    assert file.record(0) is None and file.record(3) is None


def test_remote_or_missing_files_are_left_to_array_record(tmp_path):
    assert shard_reader.RecordFile("gs://bucket/data.array_record-00000-of-00001").record(0) is None
    assert shard_reader.RecordFile(str(tmp_path / "missing")).record(0) is None


def test_index_past_the_last_record_raises(tmp_path):
    path = _write(tmp_path / "c.array_record", [b"a", b"bc"], "group_size:1,uncompressed")
    file = shard_reader.RecordFile(path)
    assert file.record(1)[:] == b"bc"
    with pytest.raises(IndexError):
        file.record(2)


def test_pickles_without_its_mapping(tmp_path):
    records = _records()[:8]
    path = _write(tmp_path / "d.array_record", records, "group_size:1,uncompressed")
    file = shard_reader.RecordFile(path)
    assert file.record(7)[:] == records[7]
    copy = pickle.loads(pickle.dumps(file))
    assert [copy.record(i)[:] for i in range(8)] == records


@pytest.fixture(scope="module")
def video_list(tmp_path_factory):
    root = tmp_path_factory.mktemp("shard_reader_videos")
    lines = []
    for i in range(5):
        media.encode_video(root / f"v{i}.mp4", num_frames=12 + i, height=48, width=64)
        lines.append(f"v{i}.mp4 {i % 2}")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "labels.csv").write_text("id,name\n0,even\n1,odd\n")
    return root


def _prepare(root, output):
    prepare.prepare(
        str(root / "train.txt"),
        str(root / "labels.csv"),
        str(output),
        root=str(root),
        settings=prepare.Settings(short_side=0, videos_per_shard=2),
        workers=0,
    )
    return str(output / "videos" / "1.0.0")


def _same_records(a, b):
    for i in range(len(b)):
        x, y = a[i], b[i]
        assert {k: x[k] for k in ("path", "label", "num_frames")} == {
            k: y[k] for k in ("path", "label", "num_frames")
        }
        assert [x["video"][j] for j in range(len(x["video"]))] == list(y["video"])


@pytest.mark.parametrize("split", ["train", "train[1:4]", "train[3:]"])
def test_source_reads_prepared_shards_through_the_mapping(video_list, tmp_path, split):
    builder_dir = _prepare(video_list, tmp_path / "out")
    direct = sources.TfdsClipSource(builder_dir, split=split)
    assert len(direct._files) == {"train": 3, "train[1:4]": 2, "train[3:]": 2}[split]
    assert all(
        isinstance(direct._serialized(i), shard_reader.SplicedRecord) for i in range(len(direct))
    )
    tfds_parsed = sources.TfdsClipSource(builder_dir, split=split, fast=False)
    assert len(direct) == len(tfds_parsed) == {"train": 5, "train[1:4]": 3, "train[3:]": 2}[split]
    _same_records(direct, tfds_parsed)
    indices = np.arange(5) % len(direct)
    frames = sources.load_clip(direct[len(direct) - 1], lambda f: indices % f)
    assert media.read_indices(frames) == (indices % direct[len(direct) - 1]["num_frames"]).tolist()


def test_compressed_shards_still_read(video_list, tmp_path, monkeypatch):
    # Shards written before prepare wrote them uncompressed (or by TFDS itself).
    monkeypatch.setattr(prepare, "ARRAY_RECORD_OPTIONS", "group_size:1")
    builder_dir = _prepare(video_list, tmp_path / "old")
    source = sources.TfdsClipSource(builder_dir, split="train")
    assert all(isinstance(source._serialized(i), bytes) for i in range(len(source)))
    _same_records(source, sources.TfdsClipSource(builder_dir, split="train", fast=False))
