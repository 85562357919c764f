r"""Derives the split files of the evaluation protocols; thin commands over `protocols`.

Zero-shot class splits from two label files (e.g. the Kinetics-600 classes not in Kinetics-400)::

  python -m actionclip_jax.splits derive_zero_shot --old=kinetics400 --new=kinetics600 \
      --output=DIR [--num_splits=3 --classes_per_split=160 --seed=0 \
      --renames=k400_to_k600|none|FILE.csv --list=K600_LIST]

writes `DIR/new_classes.csv` (every new class), `DIR/zero_shot_split{N}.csv` (label files) and
`DIR/report.json` (renames applied or unused, old classes with no match: nothing is dropped
silently). With `--list` (a list file whose ids index `--new`), also `DIR/zero_shot_split{N}.txt`:
the videos of each split's classes, relabelled to the split's ids.

A K-shot training list, K videos per class drawn with a seed::

  python -m actionclip_jax.splits few_shot --list=FILE --labels=CSV --k=16 --seed=0 \
      --output=FILE [--allow_fewer]

writes the chosen lines and `FILE.json` (source, its SHA-256, k, seed), so the draw can be
repeated and checked.

The shipped lists name UCF101 and HMDB51 videos by file name without class folders; put the
videos in one flat folder of links (the folder `data.root` points to)::

  python -m actionclip_jax.splits flatten --src=UCF-101 --output=data/ucf101/videos

The "full" zero-shot lists of Open-VCLIP and FROSTER (UCF101*: all 13,320 videos; HMDB51*: the
5,100 videos of split 1's training and test lists), ids as the shipped lists' (read off their
split-1 test list)::

  python -m actionclip_jax.splits full --dataset=ucf101 --src=UCF-101 --output=FILE
  python -m actionclip_jax.splits full --dataset=hmdb51 --src=testTrainMulti_7030_splits \
      --output=FILE

(UCF101: every `v_<Class>_g<NN>_c<NN>` video under `--src`; HMDB51: the official split files
`<class>_test_split1.txt`, whose lines mark a video 1 (train) or 2 (test).)

The lines of a list whose classes are in another label file, relabelled to it (e.g. Open-VCLIP's
K600 protocol: K600's validation videos of each 160-class zero-shot split)::

  python -m actionclip_jax.splits restrict --list=k600_val.txt --labels=kinetics600 \
      --to=kinetics600_zero_shot_split1 --output=FILE
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re

from absl import app, flags
from etils import epath

from data_pipeline import labels as label_files
from data_pipeline import sources
from data_pipeline import splits as split_lists

FLAGS = flags.FLAGS

COMMANDS = ("derive_zero_shot", "few_shot", "flatten", "full", "restrict")


def _define_flags() -> None:
    """Defines the command-line flags, only when the module runs as a program: importing it
    (tests, the trainer) must not define global flags that could clash with others."""
    flags.DEFINE_string("old", None, "derive_zero_shot: label file (or built-in name) seen.")
    flags.DEFINE_string("new", None, "derive_zero_shot: label file of the target data set.")
    flags.DEFINE_string(
        "renames", "k400_to_k600", "derive_zero_shot: k400_to_k600, none, or a CSV 'old,new'."
    )
    flags.DEFINE_integer("num_splits", 3, "derive_zero_shot: number of class splits.")
    flags.DEFINE_integer("classes_per_split", 160, "derive_zero_shot: classes a split.")
    flags.DEFINE_string(
        "list", None, "few_shot: list to draw from; derive_zero_shot: optional list over --new."
    )
    flags.DEFINE_string("labels", None, "few_shot: label file the list's ids index.")
    flags.DEFINE_integer("k", 16, "few_shot: videos per class.")
    flags.DEFINE_bool(
        "allow_fewer", False, "few_shot: take all videos of classes with fewer than k."
    )
    flags.DEFINE_integer("seed", 0, "Seed of the draw.")
    flags.DEFINE_string("output", None, "Output folder (derive_zero_shot, flatten) or file.")
    flags.DEFINE_string(
        "src", None, "flatten, full: folder tree holding the videos (HMDB51 full: split files)."
    )
    flags.DEFINE_string("dataset", None, "full: ucf101 or hmdb51.")
    flags.DEFINE_string("to", None, "restrict: the label file whose classes are kept.")
    flags.DEFINE_bool("overwrite", False, "Replace existing outputs.")


def _require(*names):
    missing = [f"--{k}" for k in names if FLAGS[k].value is None]
    if missing:
        raise app.UsageError(f"missing {', '.join(missing)}")


def _write(path: epath.Path, text: str, overwrite: bool):
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    path.write_text(text)


def labels_csv(names) -> str:
    """A label file's text: `id,name` then one row per class (quoted where needed)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "name"])
    w.writerows(enumerate(names))
    return buf.getvalue()


def read_renames(spec: str) -> dict[str, str]:
    """`k400_to_k600` (the built-in table), `none`, or a CSV file with rows `old,new`."""
    if spec == "k400_to_k600":
        return dict(split_lists.RENAMES_K400_TO_K600)
    if spec in ("", "none"):
        return {}
    rows = list(csv.reader(io.StringIO(epath.Path(spec).read_text())))
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0]] == ["old", "new"]:
        rows = rows[1:]
    bad = [r for r in rows if len(r) != 2]
    if bad:
        raise ValueError(f"{spec}: every row must be 'old,new'; bad rows: {bad[:5]}")
    return {r[0].strip(): r[1].strip() for r in rows}


def derive_zero_shot(
    old: str,
    new: str,
    output: str,
    *,
    num_splits: int = 3,
    classes_per_split: int = 160,
    seed: int = 0,
    renames: str = "k400_to_k600",
    list_file: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Writes the zero-shot split files (see the module docstring); returns the report."""
    old_names = label_files.read_labels(old)
    new_names = label_files.read_labels(new)
    fresh, report = split_lists.new_classes(old_names, new_names, read_renames(renames))
    splits = split_lists.draw_class_splits(fresh, num_splits, classes_per_split, seed)
    out = epath.Path(output)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "new_classes.csv", labels_csv(fresh), overwrite)
    for i, names in enumerate(splits, start=1):
        _write(out / f"zero_shot_split{i}.csv", labels_csv(names), overwrite)
    report.update(
        old=str(old), new=str(new), renames=renames, seed=seed, num_splits=num_splits,
        classes_per_split=classes_per_split,
    )  # fmt: skip
    if list_file:
        records, line_numbers = sources.parse_list_file(
            split_lists.resolve_list(list_file), num_classes=len(new_names)
        )
        lines = epath.Path(split_lists.resolve_list(list_file)).read_text().splitlines()
        report["list"] = str(list_file)
        report["list_videos_per_split"] = []
        for i, names in enumerate(splits, start=1):
            ids = {new_names.index(n): j for j, n in enumerate(names)}
            kept = []
            for r, ln in zip(records, line_numbers):
                if r["label"] in ids:
                    fields = lines[ln - 1].split()
                    kept.append(" ".join(fields[:-1] + [str(ids[r["label"]])]))
            _write(out / f"zero_shot_split{i}.txt", "".join(x + "\n" for x in kept), overwrite)
            report["list_videos_per_split"].append(len(kept))
    _write(out / "report.json", json.dumps(report, indent=2) + "\n", overwrite)
    return report


def few_shot(
    list_file: str,
    labels: str,
    k: int,
    seed: int,
    output: str,
    allow_fewer: bool = False,
    overwrite: bool = False,
) -> list[str]:
    """Writes a K-shot list and its provenance `output + ".json"`; returns the lines."""
    num_classes = len(label_files.read_labels(labels))
    lines = split_lists.draw_few_shot(list_file, k, seed, num_classes, allow_fewer=allow_fewer)
    source = epath.Path(split_lists.resolve_list(list_file))
    out = epath.Path(output)
    if out.parent:
        out.parent.mkdir(parents=True, exist_ok=True)
    _write(out, "".join(x + "\n" for x in lines), overwrite)
    meta = {
        "list": str(list_file),
        "list_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "labels": str(labels),
        "k": k,
        "seed": seed,
        "allow_fewer": allow_fewer,
        "num_videos": len(lines),
        "command": (
            f"python -m actionclip_jax.splits few_shot --list={list_file} --labels={labels} "
            f"--k={k} --seed={seed} --output={output}" + (" --allow_fewer" if allow_fewer else "")
        ),
    }
    _write(epath.Path(f"{output}.json"), json.dumps(meta, indent=2) + "\n", overwrite)
    return lines


def flatten(src: str, output: str, overwrite: bool = False) -> int:
    """Links every video under `src` into the folder `output` by file name; returns the count.

    Fails on two videos with one file name (the lists could not tell them apart).
    """
    seen: dict[str, str] = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if os.path.splitext(f)[1].lower() in sources.VIDEO_EXTENSIONS:
                if f in seen:
                    raise ValueError(f"two videos named {f}: {seen[f]} and {dirpath}")
                seen[f] = os.path.join(dirpath, f)
    if not seen:
        raise FileNotFoundError(f"no video files under {src}")
    os.makedirs(output, exist_ok=True)
    for name, path in sorted(seen.items()):
        link = os.path.join(output, name)
        if os.path.lexists(link):
            if not overwrite:
                continue  # an earlier, interrupted run: keep going
            os.remove(link)
        os.symlink(os.path.abspath(path), link)
    return len(seen)


_UCF_NAME = re.compile(r"v_(?P<cls>[A-Za-z]+)_g\d+_c\d+")


def _ids_of_shipped_test_list(dataset: str, class_of) -> dict[str, int]:
    """Class → id as the shipped split-1 test list has it (`class_of(file name)` → class)."""
    ids: dict[str, int] = {}
    for line in epath.Path(split_lists.resolve_list(f"{dataset}/val1")).read_text().splitlines():
        name, label = line.rsplit(" ", 1)
        cls = class_of(name)
        if cls is not None:
            ids.setdefault(cls, int(label))
    return ids


def full_list(dataset: str, src: str) -> list[str]:
    """The lines (`<file name> <id>`) of a data set's "full" zero-shot list (module docstring)."""
    if dataset == "ucf101":
        def ucf_class(name):
            m = _UCF_NAME.match(name)
            return m.group("cls") if m else None

        ids = _ids_of_shipped_test_list("ucf101", ucf_class)
        lines = []
        for _, _, files in os.walk(src):
            for f in files:
                if os.path.splitext(f)[1].lower() not in sources.VIDEO_EXTENSIONS:
                    continue
                cls = ucf_class(f)
                if cls not in ids:
                    raise ValueError(f"{f}: not a UCF101 video name of a known class")
                lines.append(f"{f} {ids[cls]}")
    elif dataset == "hmdb51":
        split_files = sorted(epath.Path(src).glob("*_test_split1.txt"))
        if len(split_files) != 51:
            raise FileNotFoundError(
                f"{src}: expected HMDB51's 51 split-1 files <class>_test_split1.txt, found "
                f"{len(split_files)}"
            )
        marks = {}
        for path in split_files:
            cls = path.name[: -len("_test_split1.txt")]
            for row in path.read_text().split("\n"):
                parts = row.split()
                if len(parts) == 2:
                    marks[parts[0]] = (cls, parts[1])
        # The shipped test list gives each class its id: the class of any of its videos.
        file_ids = {}
        for line in epath.Path(split_lists.resolve_list("hmdb51/val1")).read_text().splitlines():
            name, label = line.rsplit(" ", 1)
            file_ids[name] = int(label)
        ids = {marks[f][0]: i for f, i in file_ids.items() if f in marks}
        if len(ids) != 51:
            raise ValueError(f"{src}: the split files name {len(ids)} of the test list's classes")
        lines = [f"{f} {ids[c]}" for f, (c, mark) in sorted(marks.items()) if mark in ("1", "2")]
    else:
        raise ValueError(f"full: --dataset must be ucf101 or hmdb51, got {dataset!r}")
    if not lines:
        raise FileNotFoundError(f"no {dataset} videos found under {src}")
    return sorted(lines)


def restrict(list_file: str, labels: str, to: str) -> list[str]:
    """The lines of `list_file` (ids index `labels`) whose class is in the label file `to`, with
    ids relabelled to `to`'s (module docstring)."""
    names = label_files.read_labels(label_files.resolve_label_file(labels))
    target = {n: i for i, n in enumerate(label_files.read_labels(
        label_files.resolve_label_file(to)))}  # fmt: skip
    missing = sorted(set(target) - set(names))
    if missing:
        raise ValueError(f"{to}: classes {missing[:5]} are not in {labels}")
    out = []
    for line in epath.Path(list_file).read_text().splitlines():
        if not line.strip():
            continue
        head, label = line.rsplit(" ", 1)
        name = names[int(label)]
        if name in target:
            out.append(f"{head} {target[name]}")
    return out


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"usage: python -m actionclip_jax.splits {{{'|'.join(COMMANDS)}}} ...")
    command = argv[1]
    if command == "derive_zero_shot":
        _require("old", "new", "output")
        report = derive_zero_shot(
            FLAGS.old, FLAGS.new, FLAGS.output, num_splits=FLAGS.num_splits,
            classes_per_split=FLAGS.classes_per_split, seed=FLAGS.seed, renames=FLAGS.renames,
            list_file=FLAGS.list, overwrite=FLAGS.overwrite,
        )  # fmt: skip
        print(
            f"{report['num_new_classes']} new classes ({len(report['renamed'])} renames applied); "
            f"wrote {FLAGS.num_splits} splits of {FLAGS.classes_per_split} to {FLAGS.output}"
        )
        if report["unused_renames"]:
            print(f"renames not applied: {report['unused_renames']}")
        if report["old_not_in_new"]:
            print(
                f"{len(report['old_not_in_new'])} old classes not in the new labels: "
                f"{report['old_not_in_new']}"
            )
    elif command == "few_shot":
        _require("list", "labels", "output")
        lines = few_shot(
            FLAGS.list, FLAGS.labels, FLAGS.k, FLAGS.seed, FLAGS.output, FLAGS.allow_fewer,
            FLAGS.overwrite,
        )  # fmt: skip
        print(f"wrote {len(lines)} videos to {FLAGS.output} (k={FLAGS.k}, seed={FLAGS.seed})")
    elif command == "full":
        _require("dataset", "src", "output")
        lines = full_list(FLAGS.dataset, FLAGS.src)
        _write(epath.Path(FLAGS.output), "\n".join(lines) + "\n", FLAGS.overwrite)
        print(f"wrote {len(lines)} videos to {FLAGS.output}")
    elif command == "restrict":
        _require("list", "labels", "to", "output")
        lines = restrict(FLAGS.list, FLAGS.labels, FLAGS.to)
        _write(epath.Path(FLAGS.output), "\n".join(lines) + "\n", FLAGS.overwrite)
        print(f"wrote {len(lines)} of the videos of {FLAGS.list} to {FLAGS.output}")
    else:
        _require("src", "output")
        count = flatten(FLAGS.src, FLAGS.output, FLAGS.overwrite)
        print(f"linked {count} videos into {FLAGS.output}")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
