"""Tests for data_pipeline.labels and data_pipeline.sources: label files, list files, load_clip."""

import os
import subprocess
import sys

import media
import numpy as np
import pytest

from data_pipeline import labels, sampling, sources, transforms
from data_pipeline.video import VideoDecodeError, read_video_frames

# --- label files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, count, first",
    [
        ("kinetics400", 400, "abseiling"),
        ("kinetics600", 600, "abseiling"),
        ("ucf101", 101, "ApplyEyeMakeup"),
        ("hmdb51", 51, "brush hair"),
        ("kinetics400_novel", 200, "tying bow tie"),
        ("ucf101_base", 51, "Typing"),
        ("hmdb51_novel", 25, "brush hair"),
        ("kinetics600_zero_shot_split2", 160, "acting in play"),
    ],
)
def test_builtin_label_sets(name, count, first):
    names = labels.read_labels(name)
    assert len(names) == count and names[0] == first


def test_every_builtin_name_resolves_and_reads():
    for name in labels.BUILTIN_LABEL_FILES:
        assert labels.read_labels(name), name
    # The file name of a shipped CSV works as well.
    assert len(labels.read_labels("ucf_labels.csv")) == 101


def test_label_files_are_found_without_importing_the_model_package():
    code = (
        "import sys, data_pipeline.labels as l, data_pipeline.sources, data_pipeline.pipeline;"
        "assert len(l.read_labels('hmdb51')) == 51;"
        "bad = [m for m in sys.modules if m.startswith('actionclip_jax')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_read_labels_from_a_path(tmp_path):
    path = _write(tmp_path / "l.csv", 'id,name\n0,ride bike\n1,"eat, drink"\n\n')
    assert labels.read_labels(path) == ["ride bike", "eat, drink"]


@pytest.mark.parametrize(
    "text, where, what",
    [
        ("name,id\n0,a\n", ":1:", "header"),
        ("id,name\n0,a\n2,b\n", ":3:", "out of order"),
        ("id,name\n0,a\nx,b\n", ":3:", "not an integer"),
        ("id,name\n0,a\n1,\n", ":3:", "empty class name"),
        ("id,name\n0,a\n1,a\n", ":3:", "repeats"),
        ("id,name\n0,a,b\n", ":2:", "2 columns"),
        ("id,name\n", "", "no classes"),
        ("", ":1:", "empty label file"),
    ],
)
def test_bad_label_files_name_file_and_line(tmp_path, text, where, what):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(labels.LabelFileError, match=what) as info:
        labels.read_labels(path)
    assert f"{path}{where}" in str(info.value)


def test_label_file_that_is_not_utf8_names_file_line_and_byte(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,name\n0,ride bike\n1,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(labels.LabelFileError) as info:
        labels.read_labels(path)
    assert str(info.value) == (
        f"{path}:3: not UTF-8 text (byte 0xe9 at column 6); save the file as UTF-8"
    )


def test_missing_label_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        labels.read_labels(tmp_path / "nope.csv")


# --- list files ------------------------------------------------------------------------


def test_parse_list_file_forms_and_root(tmp_path):
    path = _write(
        tmp_path / "list.txt",
        "frames/a 30 0\n"
        "\n"
        "videos/b.mp4 1\n"
        "videos/c.MKV 120 2\n"  # Three columns naming a video file.
        "/abs/d 8 1\n"
        "gs://bucket/e.mp4 0\n",
    )
    records, lines = sources.parse_list_file(path, root="/data", num_classes=3)
    assert lines == [1, 3, 4, 5, 6]
    assert records == [
        {"path": "/data/frames/a", "label": 0, "num_frames": 30, "kind": "frames"},
        {"path": "/data/videos/b.mp4", "label": 1, "num_frames": None, "kind": "video"},
        {"path": "/data/videos/c.MKV", "label": 2, "num_frames": 120, "kind": "video"},
        {"path": "/abs/d", "label": 1, "num_frames": 8, "kind": "frames"},
        {"path": "gs://bucket/e.mp4", "label": 0, "num_frames": None, "kind": "video"},
    ]
    forced, _ = sources.parse_list_file(path, kind="video")
    assert {r["kind"] for r in forced} == {"video"}
    assert forced[0]["path"] == "frames/a"  # No root: relative to the working directory.


@pytest.mark.parametrize(
    "line, what",
    [
        ("a 1 2 3", "4 fields"),
        ("a", "1 fields"),
        ("a x 3", "num_frames 'x' is not an integer"),
        ("a 10 y", "label 'y' is not an integer"),
        ("a 0 1", "num_frames must be >= 1"),
        ("a 10 5", r"label id 5 out of range \[0, 5\)"),
        ("a.mp4 -1", "label id -1 out of range"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, what):
    path = _write(tmp_path / "list.txt", f"ok 10 0\n{line}\n")
    with pytest.raises(sources.ListFileError, match=what) as info:
        sources.parse_list_file(path, num_classes=5)
    assert str(info.value).startswith(f"{path}:2: ")
    assert info.value.line == 2


def test_problems_are_collected_when_asked(tmp_path):
    path = _write(tmp_path / "list.txt", "a 10 0\nb 10 9\nc\nd 10 1\n")
    problems = []
    records, lines = sources.parse_list_file(path, num_classes=3, problems=problems)
    assert lines == [1, 4] and [r["path"] for r in records] == ["a", "d"]
    assert [(type(p), p.line) for p in problems] == [
        (sources.LabelRangeError, 2),
        (sources.ListFileError, 3),
    ]


def test_list_lines_that_are_not_utf8_name_file_and_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"a 10 0\nb\xff.mp4 1\r\nc 10 2\nd\xe9 10 0\n")
    with pytest.raises(sources.ListFileError) as info:
        sources.parse_list_file(path, num_classes=3)
    assert str(info.value) == (
        f"{path}:2: not UTF-8 text (byte 0xff at column 2); save the file as UTF-8"
    )
    assert info.value.line == 2
    # The checker's mode: every such line is a problem, the others are read.
    problems = []
    records, lines = sources.parse_list_file(path, num_classes=3, problems=problems)
    assert [r["path"] for r in records] == ["a", "c"] and lines == [1, 3]
    assert [(p.line, "not UTF-8" in str(p)) for p in problems] == [(2, True), (4, True)]


def test_missing_and_empty_list_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="list file not found"):
        sources.parse_list_file(tmp_path / "none.txt")
    with pytest.raises(sources.ListFileError, match="no entries"):
        sources.parse_list_file(_write(tmp_path / "empty.txt", "\n\n"))


def test_video_clip_source_checks_labels_against_the_label_file(tmp_path):
    label_file = _write(tmp_path / "l.csv", "id,name\n0,a\n1,b\n")
    path = _write(tmp_path / "list.txt", "x.mp4 1\ny.mp4 0\n")
    source = sources.VideoClipSource(path, root=tmp_path, labels=label_file)
    assert len(source) == 2
    assert source[1] == {
        "path": str(tmp_path / "y.mp4"),
        "label": 0,
        "num_frames": None,
        "kind": "video",
    }
    source[1]["label"] = 7  # Records handed out are copies.
    assert source[1]["label"] == 0
    with pytest.raises(sources.LabelRangeError, match=":1: label id 1"):
        sources.VideoClipSource(path, labels=["only one"])


# --- load_clip -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sources_media")
    media.encode_video(d / "clip.mp4", num_frames=30, height=48, width=64, keyframe_interval=12)
    media.write_frame_folder(d / "frames", num_frames=12, height=48, width=64)
    return d


def test_load_clip_video_exact_indices(media_dir):
    record = {"path": str(media_dir / "clip.mp4"), "label": 0, "num_frames": None, "kind": "video"}
    seen = []

    def indices_fn(num_frames):
        seen.append(num_frames)
        return sampling.train_indices(num_frames, 8, np.random.default_rng(3))

    frames = sources.load_clip(record, indices_fn)
    expected = sampling.train_indices(30, 8, np.random.default_rng(3))
    assert seen == [30]  # The frame count decord reports, asked once.
    assert frames.shape == (8, 48, 64, 3) and frames.dtype == np.uint8
    assert media.read_indices(frames) == expected.tolist()
    # Unsorted and repeated indices come back in the order asked for.
    frames = sources.load_clip(record, lambda f: np.array([29, 3, 3, 17, 0]))
    assert media.read_indices(frames) == [29, 3, 3, 17, 0]


def test_load_clip_frame_folder_one_based_and_counted(media_dir):
    record = {"path": str(media_dir / "frames"), "label": 0, "num_frames": 12, "kind": "frames"}
    frames = sources.load_clip(record, lambda f: sampling.test_indices(f, 4))
    assert media.read_indices(frames) == sampling.test_indices(12, 4).tolist() == [1, 4, 7, 10]
    # Without a count in the list, the folder's frame files are counted.
    counted = []
    sources.load_clip(dict(record, num_frames=None), lambda f: counted.append(f) or [0])
    assert counted == [12]


def test_load_clip_errors(media_dir, tmp_path):
    missing = {"path": str(tmp_path / "no.mp4"), "label": 0, "num_frames": None, "kind": "video"}
    with pytest.raises(FileNotFoundError, match="no.mp4"):
        sources.load_clip(missing, lambda f: [0])
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty.mp4"):
        sources.load_clip(dict(missing, path=str(tmp_path / "empty.mp4")), lambda f: [0])
    folder = {"path": str(media_dir / "frames"), "label": 0, "num_frames": 20, "kind": "frames"}
    with pytest.raises(FileNotFoundError, match="img_00020.jpg"):
        sources.load_clip(folder, lambda f: [f - 1])
    (tmp_path / "no_frames").mkdir()
    with pytest.raises(VideoDecodeError, match="no files matching"):
        sources.load_clip(
            dict(folder, path=str(tmp_path / "no_frames"), num_frames=None), lambda f: [0]
        )


def test_load_clip_decoded_tfds_arrays_and_encoded_frames(media_dir):
    clip = np.stack([media.make_frame(i, 48, 64) for i in range(6)])  # [6, 48, 64, 3]
    record = {"path": "x", "label": 0, "num_frames": 6, "kind": "tfds", "video": clip}
    assert media.read_indices(sources.load_clip(record, lambda f: [5, 0])) == [5, 0]
    jpegs = np.array(
        [(media_dir / "frames" / f"img_{i:05d}.jpg").read_bytes() for i in range(1, 7)],
        dtype=object,
    )
    record["video"] = jpegs
    assert media.read_indices(sources.load_clip(record, lambda f: [4, 4, 1])) == [4, 4, 1]
    record["video"] = np.array([jpegs[0], b"not a jpeg"], dtype=object)
    with pytest.raises(VideoDecodeError, match="frame 1 of x"):
        sources.load_clip(record, lambda f: [0, 1])


def test_load_clip_on_a_real_clip():
    """bikes.mp4 (640x272, 250 frames, 25 fps, H.264): the same frames as the reader."""
    path = media.bikes_mp4_path()
    record = {"path": path, "label": 0, "num_frames": None, "kind": "video"}
    indices = sampling.test_indices(250, 8, num_clips=2, clip_index=1)
    frames = sources.load_clip(record, lambda f: indices)
    np.testing.assert_array_equal(frames, read_video_frames(path, indices))
    assert frames.shape == (8, 272, 640, 3)
    views = transforms.three_crops(transforms.resize_short_side(frames, 256), 224)
    assert views.shape == (3, 8, 224, 224, 3)


def test_open_source_dispatch(tmp_path):
    path = _write(tmp_path / "list.txt", "a.mp4 0\n")
    assert isinstance(sources.open_source(path), sources.VideoClipSource)
    custom = [{"path": "p", "label": 0, "num_frames": 3, "kind": "frames"}]
    assert sources.open_source(custom) is custom
    assert not sources.is_tfds_dir(tmp_path)
    assert os.path.exists(path)
