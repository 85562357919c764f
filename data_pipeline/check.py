r"""Checks a list file and its data before a long training run.

Usage::

    python -m data_pipeline.check --list=FILE --labels=CSV [--root=DIR] [--decode] \
        [--backend=decord|pyav --decode_timeout_s=60] [--json=OUT] \
        [--num_frames=8 --workers=N --kind=video|frames]

Prints the number of entries and classes, entries per class (min / max, and classes with
none), malformed lines (including lines that are not UTF-8 text), label ids out of
range, missing files (a missing video, frame folder, or a frame folder with fewer
``img_*.jpg`` files than its list line says) and zero-byte videos. With ``--decode``
every video or frame folder is also opened and the frames a test clip samples
(``--num_frames`` segment centres) are decoded with ``--backend``, which finds truncated
and corrupt files, and videos that take longer than ``--decode_timeout_s`` to decode
(decoded in a child process that is killed then; 0: no limit). Exits with status 1 when
it found any problem, when the list has no entries (training refuses it too), and when
the list or label file itself cannot be read; 0 otherwise.

``--json`` writes ``{"entries", "classes", "missing", "unreadable", "bad_labels",
"malformed"}`` (integers) plus ``entries_per_class``, ``empty_classes`` and the first
problems with line numbers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Sequence

import numpy as np
from absl import app, flags
from etils import epath

from data_pipeline import labels as labels_lib
from data_pipeline import processes, sampling
from data_pipeline import sources as sources_lib
from data_pipeline import video as video_lib

_MAX_LISTED = 50  # Problems listed in the output (all are counted).


def _probe(task: tuple[dict, bool, int, processes.VideoDecoder]) -> tuple[str, str] | None:
    """Checks one record: None if fine, else ("missing" | "unreadable", message)."""
    record, decode, num_frames, decoder = task
    path = record["path"]
    try:
        if record["kind"] == "video":
            file = epath.Path(path)
            if not file.exists():
                return "missing", f"video file not found: {path}"
            if not file.is_file():
                return "unreadable", f"not a file: {path}"
            if file.stat().length == 0:
                return "unreadable", f"empty file (0 bytes): {path}"
        else:
            if not epath.Path(path).is_dir():
                return "missing", f"frame folder not found: {path}"
            if record["num_frames"] is not None:
                count = sources_lib.count_frames(path)
                if count < record["num_frames"]:
                    return "missing", (
                        f"frame folder {path} has {count} frame files, the list says "
                        f"{record['num_frames']}"
                    )
        if decode:
            sources_lib.load_clip(
                record, lambda f: sampling.test_indices(f, num_frames), decode_video=decoder
            )
    except FileNotFoundError as e:
        return "missing", str(e)
    except (OSError, ValueError) as e:
        return "unreadable", str(e)
    return None


def check(
    list_path: str,
    labels: str,
    *,
    root: str | None = None,
    decode: bool = False,
    num_frames: int = 8,
    workers: int = 0,
    kind: str | None = None,
    backend: video_lib.Backend = "decord",
    decode_timeout_s: float = 60.0,
) -> dict:
    """Runs the checks; returns the report (see the module docstring).

    Raises:
      FileNotFoundError: The list or label file does not exist.
      LabelFileError: The label file is malformed.
    """
    decoder = processes.VideoDecoder(backend, decode_timeout_s)
    class_names = labels_lib.read_labels(labels)
    problems: list[sources_lib.ListFileError] = []
    records, lines = sources_lib.parse_list_file(
        list_path, root=root, num_classes=len(class_names), kind=kind, problems=problems
    )
    bad_labels = [p for p in problems if isinstance(p, sources_lib.LabelRangeError)]
    malformed = [p for p in problems if not isinstance(p, sources_lib.LabelRangeError)]
    report_problems = [
        {"line": p.line, "kind": "bad_label" if p in bad_labels else "malformed", "error": str(p)}
        for p in problems
    ]

    tasks = [(record, decode, num_frames, decoder) for record in records]
    if workers > 0 and len(tasks) > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_probe, tasks, chunksize=max(1, len(tasks) // (8 * workers)))
    else:
        results = [_probe(task) for task in tasks]
    counts = {"missing": 0, "unreadable": 0}
    for record, line, result in zip(records, lines, results):
        if result is not None:
            what, message = result
            counts[what] += 1
            report_problems.append(
                {"line": line, "kind": what, "path": record["path"], "error": message}
            )
    report_problems.sort(key=lambda p: (p["line"] or 0, p["kind"]))

    per_class = np.bincount(
        np.asarray([r["label"] for r in records], np.int64), minlength=len(class_names)
    )
    return {
        "entries": len(records) + len(problems),
        "classes": len(class_names),
        "missing": counts["missing"],
        "unreadable": counts["unreadable"],
        "bad_labels": len(bad_labels),
        "malformed": len(malformed),
        "decoded": decode,
        "entries_per_class": {"min": int(per_class.min()), "max": int(per_class.max())},
        "empty_classes": [class_names[i] for i in np.flatnonzero(per_class == 0).tolist()],
        "problems": report_problems[:_MAX_LISTED],
    }


def has_problems(report: dict) -> bool:
    """True when the report should fail a job (empty classes alone do not; an empty list does)."""
    return report["entries"] == 0 or any(
        report[k] for k in ("missing", "unreadable", "bad_labels", "malformed")
    )


def format_report(report: dict, list_path: str) -> str:
    """The human-readable report."""
    per_class = report["entries_per_class"]
    lines = [
        f"{list_path}: {report['entries']} entries, {report['classes']} classes",
        f"entries per class: min {per_class['min']}, max {per_class['max']}",
        f"malformed lines: {report['malformed']}",
        f"label ids out of range: {report['bad_labels']}",
        f"missing files: {report['missing']}",
        "unreadable files: "
        + (
            str(report["unreadable"])
            if report["decoded"]
            else f"{report['unreadable']} (zero-byte only; add --decode to decode every entry)"
        ),
    ]
    if report["entries"] == 0:
        lines.append("no entries: the list is empty (one '<path> <label>' line per video)")
    if report["empty_classes"]:
        shown = report["empty_classes"][:10]
        lines.append(f"classes without entries: {len(report['empty_classes'])}, e.g. {shown}")
    for p in report["problems"]:
        lines.append(f"  line {p['line']}: {p['kind']}: {p['error']}")
    total = sum(report[k] for k in ("missing", "unreadable", "bad_labels", "malformed"))
    if total > len(report["problems"]):
        lines.append(f"  ... and {total - len(report['problems'])} more")
    lines.append("FAILED: fix the problems above" if has_problems(report) else "OK")
    return "\n".join(lines)


FLAGS = flags.FLAGS


def _define_flags() -> None:
    """Defines the command-line flags.

    Called only when the module runs as a program: importing it (tests, worker
    processes, other tools) must not define global flags that could clash.
    """
    flags.DEFINE_string("list", None, "List file to check.")
    flags.DEFINE_string("labels", None, "Label CSV (id,name) or built-in name.")
    flags.DEFINE_string("root", None, "Folder that relative list paths are relative to.")
    flags.DEFINE_boolean("decode", False, "Open every entry and decode a test clip.")
    flags.DEFINE_string("json", None, "Also write the report as JSON here.")
    flags.DEFINE_integer("num_frames", 8, "Frames per decoded test clip.")
    flags.DEFINE_integer("workers", os.cpu_count() or 1, "Worker processes (0: none).")
    flags.DEFINE_enum("kind", None, ["video", "frames"], "Force the kind of list entries.")
    flags.DEFINE_enum(
        "backend", "decord", sorted(video_lib.BACKENDS), "Video decoder for --decode."
    )
    flags.DEFINE_float(
        "decode_timeout_s",
        60.0,
        "With --decode: seconds one video may take; it decodes in a child process that is "
        "killed past this (0: in this process, no limit).",
    )


def main(argv: Sequence[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    for name in ("list", "labels"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--{name} is required")
    try:
        report = check(
            FLAGS.list,
            FLAGS.labels,
            root=FLAGS.root,
            decode=FLAGS.decode,
            num_frames=FLAGS.num_frames,
            workers=FLAGS.workers,
            kind=FLAGS.kind,
            backend=FLAGS.backend,
            decode_timeout_s=FLAGS.decode_timeout_s,
        )
    except (FileNotFoundError, labels_lib.LabelFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_report(report, FLAGS.list))
    if FLAGS.json:
        epath.Path(FLAGS.json).write_text(json.dumps(report, indent=1) + "\n")
    return 1 if has_problems(report) else 0


if __name__ == "__main__":
    _define_flags()
    app.run(main)
