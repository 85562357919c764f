r"""Writes list and label files for a folder-per-class tree of videos.

Usage::

    python -m data_pipeline.make_lists --root=DIR --output=DIR \
        [--val_fraction=0.1 --seed=0 --underscores_to_spaces --overwrite]

Input layout: ``root/<class name>/<video file>`` (files with an extension in
``sources.VIDEO_EXTENSIONS``), or ``root/<class name>/<frame folder>/img_00001.jpg ...``
(folders of extracted frames). Output, in ``--output``:

* ``labels.csv``: ``id,name``; the classes are the class folders **sorted by name**
  (Python string order, so ``Zebra`` sorts before ``apple``), id = position. Sorting
  makes the ids independent of the file system's listing order.
* ``train.txt`` / ``val.txt``: ``<path relative to root> <label>`` for videos and
  ``<path> <num_frames> <label>`` for frame folders; read them with ``--root`` /
  ``root=`` set to the same root. ``val.txt`` is written only for ``--val_fraction > 0``.

The split is stratified: in every class (its files sorted by name, then shuffled with a
generator seeded by ``(seed, class id)``), ``n * val_fraction`` videos (rounded half up) go to
validation, but never all of a class's videos. Same tree and seed, same files. Existing
outputs are not overwritten without ``--overwrite``.

Names that list files cannot hold (with whitespace, or not valid UTF-8) are reported, all
of them, before anything is written. The outputs are written to temporary files first and
renamed into place together, so a failure leaves the previous outputs (or none), never
a partial set.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Sequence

import numpy as np
from absl import app, flags, logging
from etils import epath

from data_pipeline import sources as sources_lib

OUTPUT_FILES = ("labels.csv", "train.txt", "val.txt")


def _class_entries(class_dir: epath.Path, image_tmpl: str) -> tuple[list[tuple], list[str]]:
    """((name, num_frames or None) per video or frame folder, paths that lists cannot hold)."""
    entries, unfit = [], []
    for child in sorted(class_dir.iterdir(), key=lambda p: p.name):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            count = sources_lib.count_frames(child, image_tmpl)
            if count == 0:
                logging.warning("ignoring %s: a folder without %s frames", child, image_tmpl)
                continue
            entry = (child.name, count)
        elif os.path.splitext(child.name)[1].lower() in sources_lib.VIDEO_EXTENSIONS:
            entry = (child.name, None)
        else:
            continue
        if any(c.isspace() for c in child.name) or not _is_utf8(child.name):
            unfit.append(os.fspath(child))
        entries.append(entry)
    return entries, unfit


def _is_utf8(name: str) -> bool:
    # Python keeps the bytes of a file name that is not UTF-8 as lone surrogates, which a
    # UTF-8 text file cannot hold.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(path: str) -> str:
    return repr(os.fsencode(path)) if not _is_utf8(path) else repr(path)


def _write_together(texts: dict[epath.Path, str]) -> None:
    """Writes each file under a temporary name, then renames all into place."""
    temporary = {path: path.parent / f".{path.name}.tmp-{os.getpid()}" for path in texts}
    try:
        for path, text in texts.items():
            temporary[path].write_text(text, encoding="utf-8")
        for path in texts:
            temporary[path].replace(path)
    finally:
        for tmp in temporary.values():
            if tmp.exists():
                tmp.unlink()


def make_lists(
    root: str | os.PathLike,
    output: str | os.PathLike,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
    underscores_to_spaces: bool = False,
    image_tmpl: str = "img_{:05d}.jpg",
) -> dict:
    """Writes ``labels.csv``, ``train.txt`` and ``val.txt`` (see the module docstring).

    Args:
      root: The tree ``root/<class>/<video>``.
      output: Folder for the three files (created if needed).
      val_fraction: Share of each class that goes to ``val.txt``, in ``[0, 1)``.
      seed: Seed of the split.
      overwrite: Replace existing output files.
      underscores_to_spaces: Write class names with ``_`` replaced by spaces (Kinetics
        folders say ``ice_skating``; the text encoder reads ``ice skating`` better).
      image_tmpl: Frame file-name template, to recognise and count frame folders.

    Returns:
      A summary: classes, train and val entry counts, the written paths.

    Raises:
      FileNotFoundError: ``root`` does not exist.
      FileExistsError: An output exists and ``overwrite`` is False.
      ValueError: No class folders, a bad ``val_fraction``, or names with whitespace or
        that are not UTF-8 (the list format cannot hold them); nothing is written then.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    root_path, out_path = epath.Path(root), epath.Path(output)
    if not root_path.is_dir():
        raise FileNotFoundError(f"root folder not found: {root_path}")
    targets = {name: out_path / name for name in OUTPUT_FILES}
    existing = [os.fspath(p) for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"refusing to overwrite {existing}; pass --overwrite")

    classes = sorted(
        p.name for p in root_path.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if not classes:
        raise ValueError(f"no class folders in {root_path} (expected root/<class>/<video>)")
    unfit = [
        os.fspath(root_path / c)
        for c in classes
        if any(ch.isspace() for ch in c) or not _is_utf8(c)
    ]
    train_lines, val_lines, empty = [], [], []
    for label, class_name in enumerate(classes):
        entries, unfit_entries = _class_entries(root_path / class_name, image_tmpl)
        unfit += unfit_entries
        if not entries:
            empty.append(class_name)
            continue
        order = np.random.default_rng([seed, label]).permutation(len(entries))
        num_val = min(int(len(entries) * val_fraction + 0.5), len(entries) - 1)  # Half up.
        val_set = set(order[:num_val].tolist())
        for k, (name, num_frames) in enumerate(entries):
            rel = f"{class_name}/{name}"
            line = f"{rel} {label}" if num_frames is None else f"{rel} {num_frames} {label}"
            (val_lines if k in val_set else train_lines).append(line + "\n")
    if unfit:
        shown = ", ".join(_shown(p) for p in unfit[:10])
        raise ValueError(
            f"{len(unfit)} class folders or videos have names with whitespace or that are not "
            f"UTF-8, which list files cannot hold; rename them (nothing was written), e.g. "
            f"{shown}"
        )
    for class_name in empty:
        logging.warning("class %r has no videos; it keeps its label id", class_name)

    names = [c.replace("_", " ") if underscores_to_spaces else c for c in classes]
    if len(set(names)) != len(names):
        raise ValueError("class names collide after replacing underscores with spaces")
    csv_text = io.StringIO()
    writer = csv.writer(csv_text, lineterminator="\n")
    writer.writerow(["id", "name"])
    writer.writerows(enumerate(names))
    out_path.mkdir(parents=True, exist_ok=True)
    texts = {targets["labels.csv"]: csv_text.getvalue(), targets["train.txt"]: "".join(train_lines)}
    if val_fraction > 0:
        texts[targets["val.txt"]] = "".join(val_lines)
    _write_together(texts)
    if val_fraction <= 0 and targets["val.txt"].exists():
        targets["val.txt"].unlink()  # Only reachable with overwrite: a stale split.
    return {
        "classes": len(classes),
        "train": len(train_lines),
        "val": len(val_lines),
        "empty_classes": empty,
        "files": {k: os.fspath(v) for k, v in targets.items() if v.exists()},
    }


FLAGS = flags.FLAGS


def _define_flags() -> None:
    """Defines the command-line flags.

    Called only when the module runs as a program: importing it (tests, worker
    processes, other tools) must not define global flags that could clash.
    """
    flags.DEFINE_string("root", None, "Tree root/<class name>/<video>.")
    flags.DEFINE_string("output", None, "Folder for labels.csv, train.txt, val.txt.")
    flags.DEFINE_float("val_fraction", 0.1, "Share of each class for val.txt.")
    flags.DEFINE_integer("seed", 0, "Seed of the train/val split.")
    flags.DEFINE_boolean("overwrite", False, "Replace existing output files.")
    flags.DEFINE_boolean(
        "underscores_to_spaces", False, "Write class names with '_' replaced by spaces."
    )


def main(argv: Sequence[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    for name in ("root", "output"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--{name} is required")
    try:
        summary = make_lists(
            FLAGS.root,
            FLAGS.output,
            val_fraction=FLAGS.val_fraction,
            seed=FLAGS.seed,
            overwrite=FLAGS.overwrite,
            underscores_to_spaces=FLAGS.underscores_to_spaces,
        )
    except (OSError, ValueError) as e:  # Bad input: say what, in one line.
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"{summary['classes']} classes, {summary['train']} train and {summary['val']} val "
        f"entries; wrote {', '.join(summary['files'].values())}"
    )
    if summary["empty_classes"]:
        print(f"warning: classes without videos: {summary['empty_classes']}")
    print(
        f"next: python -m data_pipeline.check --list={summary['files']['train.txt']} "
        f"--labels={summary['files']['labels.csv']} --root={FLAGS.root} --decode"
    )
    return 0


if __name__ == "__main__":
    _define_flags()
    app.run(main)
