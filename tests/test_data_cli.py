"""End-to-end tests of the data tools: make_lists (tree -> lists) and check (lists -> report)."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import media
import pytest
import stub_decoders

from data_pipeline import check, labels, make_lists, sources

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module, *args):
    return subprocess.run(
        [sys.executable, "-m", f"data_pipeline.{module}", *args],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard: imports alone take a minute on a loaded 2-core machine
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """root/<class>/<video>: 3 classes (unsorted creation), 10/4/1 videos, a frame folder."""
    root = tmp_path_factory.mktemp("tree")
    video = media.encode_video(root / "_clip.mp4", num_frames=12, height=48, width=64)
    data = pathlib.Path(video).read_bytes()
    os.remove(video)
    counts = {"walking_dog": 10, "Zumba": 4, "apple_picking": 1}
    for name, count in counts.items():
        (root / name).mkdir()
        for i in range(count):
            (root / name / f"clip{i:02d}.mp4").write_bytes(data)
    (root / "Zumba" / "notes.txt").write_text("not a video")
    media.write_frame_folder(root / "Zumba" / "frames07", num_frames=9, height=48, width=64)
    return root


def test_make_lists_cli_end_to_end_then_check_passes(tree, tmp_path):
    out = tmp_path / "lists"
    result = _run("make_lists", f"--root={tree}", f"--output={out}", "--val_fraction=0.25")
    assert result.returncode == 0, result.stderr
    assert "3 classes" in result.stdout
    # Classes sorted by name, Python string order: upper case first.
    assert labels.read_labels(out / "labels.csv") == ["Zumba", "apple_picking", "walking_dog"]
    train, val = (out / "train.txt").read_text(), (out / "val.txt").read_text()
    assert "Zumba/frames07 9 0\n" in train + val  # A frame folder, counted.
    records, _ = sources.parse_list_file(out / "train.txt", root=tree, num_classes=3)
    val_records, _ = sources.parse_list_file(out / "val.txt", root=tree, num_classes=3)
    per_class_val = [sum(r["label"] == c for r in val_records) for c in range(3)]
    # Stratified, rounded half up, never a whole class: 5 * .25 -> 1, 1 -> 0, 10 * .25 -> 3.
    assert per_class_val == [1, 0, 3]
    assert len(records) + len(val_records) == 16
    assert not {r["path"] for r in records} & {r["path"] for r in val_records}

    report = tmp_path / "report.json"
    args = [f"--list={out / 'train.txt'}", f"--labels={out / 'labels.csv'}", f"--root={tree}"]
    result = _run("check", *args, "--decode", f"--json={report}", "--workers=0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    counts = json.loads(report.read_text())
    assert {
        k: counts[k] for k in ("entries", "classes", "missing", "unreadable", "bad_labels")
    } == {
        "entries": 12,
        "classes": 3,
        "missing": 0,
        "unreadable": 0,
        "bad_labels": 0,
    }
    assert counts["entries_per_class"] == {"min": 1, "max": 7}


def test_make_lists_is_seeded_and_refuses_to_overwrite(tree, tmp_path):
    first = make_lists.make_lists(tree, tmp_path / "a", val_fraction=0.3, seed=1)
    make_lists.make_lists(tree, tmp_path / "b", val_fraction=0.3, seed=1)
    make_lists.make_lists(tree, tmp_path / "c", val_fraction=0.3, seed=2)
    val = {d: (tmp_path / d / "val.txt").read_text() for d in "abc"}
    assert val["a"] == val["b"] and val["a"] != val["c"]
    assert first["train"] + first["val"] == 16
    with pytest.raises(FileExistsError, match="overwrite"):
        make_lists.make_lists(tree, tmp_path / "a")
    summary = make_lists.make_lists(
        tree, tmp_path / "a", val_fraction=0, overwrite=True, underscores_to_spaces=True
    )
    assert summary["val"] == 0 and not (tmp_path / "a" / "val.txt").exists()
    assert labels.read_labels(tmp_path / "a" / "labels.csv")[2] == "walking dog"


def test_make_lists_rejects_names_the_list_format_cannot_hold(tmp_path):
    (tmp_path / "root" / "cls").mkdir(parents=True)
    (tmp_path / "root" / "cls" / "my video.mp4").write_bytes(b"x")
    with pytest.raises(ValueError, match="whitespace"):
        make_lists.make_lists(tmp_path / "root", tmp_path / "out")
    with pytest.raises(FileNotFoundError):
        make_lists.make_lists(tmp_path / "nowhere", tmp_path / "out")


def test_make_lists_reports_non_utf8_names_writes_nothing_and_a_rerun_works(tree, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(tree, root)
    bad = os.path.join(os.fsencode(root / "Zumba"), b"clip\xff.mp4")  # Latin-1 leftovers.
    shutil.copy(root / "Zumba" / "clip00.mp4", bad)
    out = tmp_path / "lists"
    result = _run("make_lists", f"--root={root}", f"--output={out}")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]  # One line, no traceback.
    assert last.startswith("error: 1 class folders or videos have names") and "UTF-8" in last
    assert "clip\\xff.mp4" in last and "nothing was written" in last
    assert not out.exists() or list(out.iterdir()) == []
    os.rename(bad, os.fsencode(root / "Zumba" / "clip_ff.mp4"))
    result = _run("make_lists", f"--root={root}", f"--output={out}")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["labels.csv", "train.txt", "val.txt"]


def test_make_lists_replaces_outputs_all_or_nothing(tree, tmp_path, monkeypatch):
    out = tmp_path / "lists"
    make_lists.make_lists(tree, out, val_fraction=0.25, seed=0)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    written = []

    def failing_write(self, text, encoding=None):  # The disk fills up at the second file.
        if written:
            raise OSError(28, "No space left on device")
        written.append(self)
        return pathlib.Path(self).write_bytes(text.encode(encoding or "utf-8"))

    monkeypatch.setattr(type(make_lists.epath.Path(out)), "write_text", failing_write)
    with pytest.raises(OSError, match="No space left"):
        make_lists.make_lists(tree, out, val_fraction=0.25, seed=1, overwrite=True)
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # The old lists, whole; no temporary file left behind.


@pytest.fixture(scope="module")
def broken(tree, tmp_path_factory):
    """A list with one problem of each kind the checker reports."""
    d = tmp_path_factory.mktemp("broken")
    clip = (tree / "Zumba" / "clip00.mp4").read_bytes()
    (d / "ok.mp4").write_bytes(clip)
    (d / "empty.mp4").write_bytes(b"")
    (d / "truncated.mp4").write_bytes(clip[: len(clip) // 2])
    media.write_frame_folder(d / "short_folder", num_frames=5, height=48, width=64)
    (d / "labels.csv").write_text("id,name\n0,a\n1,b\n2,c\n")
    (d / "list.txt").write_text(
        "ok.mp4 0\n"  # 1
        "missing.mp4 1\n"  # 2: missing
        "empty.mp4 1\n"  # 3: unreadable (zero bytes, found without decoding)
        "truncated.mp4 0\n"  # 4: unreadable (found with --decode)
        "ok.mp4 7\n"  # 5: bad label
        "short_folder 8 0\n"  # 6: missing frames (5 of 8)
        "ok.mp4\n"  # 7: malformed
        "no_folder 10 1\n"  # 8: missing
    )
    return d


def test_check_finds_every_problem_and_exits_non_zero(broken, tmp_path):
    args = [f"--list={broken / 'list.txt'}", f"--labels={broken / 'labels.csv'}"]
    report = tmp_path / "report.json"
    result = _run("check", *args, f"--root={broken}", "--decode", f"--json={report}")
    assert result.returncode == 1
    counts = json.loads(report.read_text())
    assert {
        k: counts[k] for k in ("entries", "classes", "missing", "unreadable", "bad_labels")
    } == {
        "entries": 8,
        "classes": 3,
        "missing": 3,
        "unreadable": 2,
        "bad_labels": 1,
    }
    assert counts["malformed"] == 1
    assert [(p["line"], p["kind"]) for p in counts["problems"]] == [
        (2, "missing"),
        (3, "unreadable"),
        (4, "unreadable"),
        (5, "bad_label"),
        (6, "missing"),
        (7, "malformed"),
        (8, "missing"),
    ]
    assert "line 4: unreadable" in result.stdout and "FAILED" in result.stdout
    assert counts["empty_classes"] == ["c"]


def test_check_without_decode_and_with_workers(broken):
    report = check.check(
        str(broken / "list.txt"), str(broken / "labels.csv"), root=str(broken), workers=2
    )
    # Without decoding the truncated video passes; the zero-byte one is caught by size.
    assert (report["missing"], report["unreadable"], report["bad_labels"]) == (3, 1, 1)
    assert check.has_problems(report)


def test_check_reports_an_empty_list_as_a_problem(broken, tmp_path):
    (tmp_path / "empty.txt").write_text("\n")
    result = _run("check", f"--list={tmp_path / 'empty.txt'}", f"--labels={broken / 'labels.csv'}")
    assert result.returncode == 1
    assert "no entries: the list is empty" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "FAILED: fix the problems above"


def test_check_names_file_and_line_of_bytes_that_are_not_utf8(broken, tmp_path):
    (tmp_path / "list.txt").write_bytes(b"ok.mp4 0\nk\xf6ln.mp4 1\n")
    args = [f"--list={tmp_path / 'list.txt'}", f"--labels={broken / 'labels.csv'}"]
    result = _run("check", *args, f"--root={broken}")
    assert result.returncode == 1
    assert f"line 2: malformed: {tmp_path / 'list.txt'}:2: not UTF-8 text" in result.stdout
    (tmp_path / "labels.csv").write_bytes(b"id,name\n0,a\n1,\xe9t\xe9\n")
    result = _run("check", f"--list={broken / 'list.txt'}", f"--labels={tmp_path / 'labels.csv'}")
    assert result.returncode == 1
    assert f"{tmp_path / 'labels.csv'}:3: not UTF-8 text" in result.stderr


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_check_decodes_with_either_backend(broken, backend):
    args = [f"--list={broken / 'list.txt'}", f"--labels={broken / 'labels.csv'}"]
    result = _run(
        "check", *args, f"--root={broken}", "--decode", f"--backend={backend}", "--workers=0"
    )
    assert result.returncode == 1
    assert "line 4: unreadable: cannot open video" in result.stdout  # The truncated one.
    assert "unreadable files: 2\n" in result.stdout


def test_check_times_out_a_video_that_hangs(broken, tmp_path):
    shutil.copy(broken / "ok.mp4", tmp_path / "ok_hang.mp4")
    shutil.copy(broken / "ok.mp4", tmp_path / "ok.mp4")
    (tmp_path / "list.txt").write_text("ok.mp4 0\nok_hang.mp4 1\n")
    report = check.check(
        str(tmp_path / "list.txt"),
        str(broken / "labels.csv"),
        root=str(tmp_path),
        decode=True,
        backend=stub_decoders.misbehaving,
        decode_timeout_s=5,
    )
    assert report["unreadable"] == 1
    assert report["problems"][0]["line"] == 2
    assert "time limit of 5 s" in report["problems"][0]["error"]


def test_check_reports_missing_list_or_label_file(broken, tmp_path):
    result = _run("check", f"--list={tmp_path / 'none.txt'}", f"--labels={broken / 'labels.csv'}")
    assert result.returncode == 1 and "list file not found" in result.stderr
    result = _run("check", f"--list={broken / 'list.txt'}", "--labels=/no/labels.csv")
    assert result.returncode == 1 and "label file not found" in result.stderr
