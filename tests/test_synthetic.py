"""Tests for data_pipeline.synthetic: the demo's generated action data set."""

import csv
import itertools
import json
import os

import decord
import numpy as np
import pytest

from data_pipeline import synthetic, video
from data_pipeline.synthetic import (
    COLOURS,
    HELDOUT_COMBINATIONS,
    MOTIONS,
    SHAPES,
    NotADemoDatasetError,
    default_demo_root,
    demo_classes,
    make_demo_dataset,
)

SIZE, NUM_FRAMES = 64, 32
SMALL = {"train_per_class": 1, "val_per_class": 1, "heldout_per_class": 2}  # 72 videos
# For the caching tests, where the content does not matter: 30 small, short videos.
TINY = {
    "train_per_class": 1,
    "val_per_class": 0,
    "heldout_per_class": 0,
    "size": 32,
    "num_frames": 8,
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo") / "data", seed=0, **SMALL)


def _read_list(path):
    with open(path) as f:
        return [(rel, int(label)) for rel, label in (line.split() for line in f if line.strip())]


def _decode(path):
    reader = decord.VideoReader(path)
    return reader.get_batch(list(range(len(reader)))).asnumpy()  # [T, H, W, 3]


def _shape_mask(frames):
    """Pixels of the saturated shape: bright in one channel, far from grey (the background
    and the distractor specks are dark and nearly grey)."""
    f = frames.astype(np.int32)
    hi, lo = f.max(axis=-1), f.min(axis=-1)
    return (hi >= 150) & (hi - lo >= 100)  # [T, H, W]


def _tree_mtimes(root):
    return {
        os.path.join(d, n): os.stat(os.path.join(d, n)).st_mtime_ns
        for d, _, names in os.walk(root)
        for n in names
    }


# --- classes ------------------------------------------------------------------------------


def test_class_list():
    names = demo_classes()
    assert len(names) == 36 == len(set(names))
    assert names[0] == "a red ring moving left"
    for i, (c, s, m) in enumerate(itertools.product(COLOURS, SHAPES, MOTIONS)):
        assert names[i] == f"a {c} {s} moving {m}"
    # Every colour-shape pair comes in all four directions, names differing in the last word.
    for c, s in itertools.product(COLOURS, SHAPES):
        group = [n for n in names if n.startswith(f"a {c} {s} moving ")]
        assert sorted(n.rsplit(" ", 1)[1] for n in group) == sorted(MOTIONS)


def test_heldout_combinations_leave_every_part_and_pair_seen():
    combos = synthetic.demo_combinations()
    heldout = synthetic.heldout_class_ids()
    assert len(heldout) == 6 and sorted(combos.index(c) for c in HELDOUT_COMBINATIONS) == heldout
    seen = [combos[i] for i in synthetic.seen_class_ids()]
    assert len(seen) == 30 and not set(seen) & set(HELDOUT_COMBINATIONS)
    for k, values in enumerate((COLOURS, SHAPES, MOTIONS)):
        assert {c[k] for c in seen} == set(values)
    # Each held-out class is a new combination of pairs that training shows at least twice.
    for held in HELDOUT_COMBINATIONS:
        for a, b in itertools.combinations(range(3), 2):
            assert sum(c[a] == held[a] and c[b] == held[b] for c in seen) >= 2, (held, a, b)


def test_default_root(monkeypatch):
    monkeypatch.delenv("ACTIONCLIP_JAX_DATA", raising=False)
    assert default_demo_root().endswith(os.path.join(".cache", "actionclip_jax", "demo_v2"))
    monkeypatch.setenv("ACTIONCLIP_JAX_DATA", "/some/where")
    assert default_demo_root() == "/some/where"


# --- files --------------------------------------------------------------------------------


def test_files_and_lists(dataset):
    root = dataset["root"]
    assert set(dataset) == {"root", "train", "val", "heldout", "labels"}
    with open(dataset["labels"], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "name"]
    assert rows[1:] == [[str(i), n] for i, n in enumerate(demo_classes())]

    lists = {split: _read_list(dataset[split]) for split in ("train", "val", "heldout")}
    seen, heldout = set(synthetic.seen_class_ids()), set(synthetic.heldout_class_ids())
    assert len(lists["train"]) == 30 and len(lists["val"]) == 30 and len(lists["heldout"]) == 12
    assert {label for _, label in lists["train"]} == seen
    assert {label for _, label in lists["val"]} == seen
    assert {label for _, label in lists["heldout"]} == heldout
    all_paths = [rel for entries in lists.values() for rel, _ in entries]
    assert len(set(all_paths)) == len(all_paths)
    for rel in all_paths:
        assert not os.path.isabs(rel) and os.path.isfile(os.path.join(root, rel))

    # The project's reader takes them as they are (TSN-style unsorted, repeated indices).
    clip = video.read_video_frames(os.path.join(root, all_paths[0]), [31, 0, 4, 4, 20])
    assert clip.shape == (5, SIZE, SIZE, 3) and clip.dtype == np.uint8

    with open(os.path.join(root, "MANIFEST.json")) as f:
        manifest = json.load(f)
    assert manifest["num_files"] == len(all_paths) + 4  # + 3 lists + labels.csv
    assert manifest["params"]["seed"] == 0 and manifest["params"]["size"] == SIZE


def test_videos_decode_move_in_their_direction_and_keep_their_colour(dataset):
    root = dataset["root"]
    combos = synthetic.demo_combinations()
    entries = _read_list(dataset["train"]) + _read_list(dataset["heldout"])[::2]  # 36 classes
    for rel, label in entries:
        colour, _, motion = combos[label]
        frames = _decode(os.path.join(root, rel))
        assert frames.shape == (NUM_FRAMES, SIZE, SIZE, 3), rel
        mask = _shape_mask(frames)
        assert mask.sum(axis=(1, 2)).min() >= 20, rel  # The shape stays in the frame.

        ys, xs = np.mgrid[0:SIZE, 0:SIZE]
        area = mask.sum(axis=(1, 2))
        cx = (mask * xs).sum(axis=(1, 2)) / area
        cy = (mask * ys).sum(axis=(1, 2)) / area
        dx = cx[-4:].mean() - cx[:4].mean()
        dy = cy[-4:].mean() - cy[:4].mean()
        expected = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[motion]
        along = dx * expected[0] + dy * expected[1]
        across = abs(dx * expected[1] + dy * expected[0])
        assert along >= 0.25 * SIZE and across <= 1.5, (rel, motion, dx, dy)
        # Monotone: frame-to-frame steps (over 4 frames, above the noise) go one way.
        steps = np.diff((cx * expected[0] + cy * expected[1])[::4])
        assert (steps > 0).all(), (rel, steps)

        mean_rgb = frames[mask].astype(np.float64).mean(axis=0)
        k = COLOURS.index(colour)
        others = np.delete(mean_rgb, k)
        assert mean_rgb[k] >= 170 and mean_rgb[k] >= 2.5 * others.max(), (rel, mean_rgb)


def test_each_shape_is_drawn_as_its_name_says():
    # The ring is hollow (the feature that makes it easy to learn at 32x32), the square fills
    # its bounding box, the triangle is upright (narrow at the top, wide at the bottom).
    for seed in range(3):
        for shape in SHAPES:
            clip = synthetic.render_clip("blue", shape, "up", np.random.default_rng(seed), SIZE, 4)
            mask = _shape_mask(clip[:1])[0]
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            h, w = box.shape
            fill = box.mean()
            if shape == "ring":
                assert (
                    abs(h - w) <= 1
                    and not box[h // 2 - 1 : h // 2 + 2, w // 2 - 1 : w // 2 + 2].any()
                )
                assert 0.4 < fill < 0.7, (seed, fill)
            elif shape == "square":
                assert abs(h - w) <= 1 and fill > 0.9, (seed, fill)
            else:
                assert box[1].sum() < 0.3 * box[-2].sum() and 0.35 < fill < 0.65, (seed, fill)


def test_frame_averages_do_not_reveal_the_direction():
    # A clip of one direction is a clip of the opposite direction played backwards (same
    # draws, reversed path), so its average frame carries no direction.
    for seed in range(5):
        clips = {
            m: synthetic.render_clip("green", "square", m, np.random.default_rng(seed), SIZE, 16)
            for m in MOTIONS
        }
        for a, b in (("left", "right"), ("up", "down")):
            diff = np.abs(clips[a][::-1].astype(int) - clips[b].astype(int))
            assert diff.max() <= 12  # Only the per-frame noise (-5..5) differs.
            means = np.abs(clips[a].mean(axis=0) - clips[b].mean(axis=0))
            assert means.mean() < 1 and means.max() < 8


# --- determinism and caching ----------------------------------------------------------------


def test_same_seed_same_content(dataset, tmp_path):
    # Each video's content depends on (seed, split, class, index) only, not on the counts.
    other = make_demo_dataset(
        tmp_path / "again", seed=0, train_per_class=1, val_per_class=0, heldout_per_class=0
    )
    for rel, _ in _read_list(other["train"])[:10]:
        a = _decode(os.path.join(dataset["root"], rel))
        b = _decode(os.path.join(other["root"], rel))
        # Encoded with mbtree off the files are byte-identical here; a little slack keeps the
        # test about content, not about one x264 build.
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2, rel
    clip_a = synthetic.render_clip("red", "ring", "left", np.random.default_rng(1), 32, 4)
    clip_b = synthetic.render_clip("red", "ring", "left", np.random.default_rng(1), 32, 4)
    assert np.array_equal(clip_a, clip_b)


def test_cached_dataset_is_reused(dataset, monkeypatch):
    before = _tree_mtimes(dataset["root"])

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cached data set was not reused as it is")

    # Reuse reads the manifest and file sizes only: no lock, no rendering, encoding or decoding.
    for name in ("_lock", "render_clip", "encode_h264", "_check_decodable"):
        monkeypatch.setattr(synthetic, name, must_not_run)
    again = make_demo_dataset(dataset["root"], seed=0, **SMALL)
    assert again == dataset
    assert _tree_mtimes(dataset["root"]) == before


def test_parameter_change_regenerates(tmp_path):
    root = tmp_path / "data"
    first = make_demo_dataset(root, seed=0, **TINY)
    rel = _read_list(first["train"])[0][0]
    frames0 = _decode(os.path.join(root, rel))
    make_demo_dataset(root, seed=1, **TINY)
    with open(root / "MANIFEST.json") as f:
        assert json.load(f)["params"]["seed"] == 1
    frames1 = _decode(os.path.join(root, rel))
    assert np.abs(frames0.astype(int) - frames1.astype(int)).mean() > 5
    # Fewer videos: the old, now unlisted files go too.
    make_demo_dataset(root, seed=1, **{**TINY, "heldout_per_class": 1})
    assert len(_read_list(root / "heldout.txt")) == 6
    # No temporary folders are left next to the root.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["data"]


def test_incomplete_dataset_is_regenerated(tmp_path):
    root = tmp_path / "data"
    paths = make_demo_dataset(root, **TINY)
    victim = os.path.join(root, _read_list(paths["train"])[3][0])
    os.remove(victim)  # Files of a demo data set may be deleted and come back.
    make_demo_dataset(root, **TINY)
    assert os.path.isfile(victim)


def test_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    root = tmp_path / "data"
    calls = []

    def failing_encode(path, frames, fps):
        calls.append(path)
        if len(calls) > 5:
            raise KeyboardInterrupt  # As if the user pressed Ctrl-C mid-way.
        return real_encode(path, frames, fps)

    real_encode = synthetic.encode_h264
    monkeypatch.setattr(synthetic, "encode_h264", failing_encode)
    with pytest.raises(KeyboardInterrupt):
        make_demo_dataset(root, **TINY)
    assert not root.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_refuses_to_delete_a_foreign_folder(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("precious")
    with pytest.raises(NotADemoDatasetError, match="not a demo data set"):
        make_demo_dataset(root, **TINY)
    assert (root / "notes.txt").read_text() == "precious"
    assert sorted(os.listdir(root)) == ["notes.txt"]

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(NotADemoDatasetError, match="not a folder"):
        make_demo_dataset(a_file, **TINY)

    # A demo data set with a foreign file in it is not deleted either, even with overwrite.
    demo = tmp_path / "demo"
    make_demo_dataset(demo, **TINY)
    (demo / "videos" / "mine.mp4").write_text("precious")
    with pytest.raises(NotADemoDatasetError, match="did not make"):
        make_demo_dataset(demo, seed=3, **TINY)
    with pytest.raises(NotADemoDatasetError):
        make_demo_dataset(demo, overwrite=True, **TINY)
    assert (demo / "videos" / "mine.mp4").read_text() == "precious"


def test_size_that_decord_cannot_batch_read_is_refused(tmp_path):
    # decord's get_batch fails on 48 px wide frames (dmlc/decord#336); if a decord release
    # fixes that, 48 simply works.
    root = tmp_path / "d48"
    try:
        paths = make_demo_dataset(root, **{**TINY, "size": 48})
    except ValueError as e:
        assert "decord" in str(e)
        assert not root.exists()
        assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    else:
        frames = _decode(os.path.join(root, _read_list(paths["train"])[0][0]))
        assert frames.shape[1:] == (48, 48, 3)


def test_bad_parameters(tmp_path):
    with pytest.raises(ValueError, match="even"):
        make_demo_dataset(tmp_path / "a", size=63)
    with pytest.raises(ValueError, match="seed"):
        make_demo_dataset(tmp_path / "a", seed=-1)
    with pytest.raises(ValueError, match="train_per_class"):
        make_demo_dataset(tmp_path / "a", train_per_class=0)
    assert not (tmp_path / "a").exists()
