r"""Turns a video list into TFDS array_record shards of JPEG frames (parallel, resumable).

Usage::

    python -m data_pipeline.prepare --list=train.txt --labels=labels.csv --output=DIR \
        [--name=videos --split=train --root=VIDEO_ROOT --short_side=256 --fps=0 \
         --quality=90 --workers=N --videos_per_shard=64]

Every readable video of the list becomes one example::

    video       Sequence(Image(encoding_format="jpeg"))  all frames (at --fps), short side
                                                           resized once to --short_side
    label       ClassLabel(names=<label CSV>)
    path        Text                                      the path as written in the list
    num_frames  int32                                     frames stored
    fps         float32                                   frame rate of the stored frames

The files are TFDS's own on-disk layout, written directly (TFDS's ``download_and_prepare``
is neither parallel nor resumable without Beam)::

    DIR/NAME/1.0.0/dataset_info.json, features.json, label.labels.txt
    DIR/NAME/1.0.0/NAME-SPLIT.array_record-00000-of-000NN ...
    DIR/NAME/1.0.0/prepare-SPLIT.json        summary: counts, skipped and truncated videos
    DIR/NAME/1.0.0/skipped-SPLIT.txt         one unreadable video a line (line, path, error)
    DIR/NAME/1.0.0/prepare_state/SPLIT/      settings and per-shard results (for resuming)

and read without TensorFlow::

    tfds.data_source("NAME", data_dir="DIR", split="SPLIT")       # or
    tfds.builder_from_directory("DIR/NAME/1.0.0").as_data_source("SPLIT")
    data_pipeline.pipeline.train_dataset("DIR/NAME/1.0.0", split="SPLIT", ...)

Shard k holds list entries ``[k * videos_per_shard, (k + 1) * videos_per_shard)`` in list
order (minus unreadable ones), so the content of every shard is fixed by the list and the
settings. Each shard is written under a temporary name and renamed when complete, after
its result file; a run that is killed and restarted redoes only the missing shards and
ends with byte-identical files. Running again with other settings into the same split is
refused. Several splits (one run each) can share a dataset folder if they share labels.

Decoding: decord, all frames (``--fps=0``) or the frames nearest to a ``--fps`` grid
(never more than the native rate). A video whose tail does not decode is cut at the last
good frame (reported as truncated) if at least half of its frames decode, else skipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import re
import tempfile
import time
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds
from absl import app, flags, logging
from decord._ffi.base import DECORDError
from etils import epath
from PIL import Image
from tensorflow_datasets.core import example_serializer

from data_pipeline import labels as labels_lib
from data_pipeline import sources as sources_lib
from data_pipeline import transforms
from data_pipeline import video as video_lib

VERSION = "1.0.0"
FILE_FORMAT = "array_record"
# One record per chunk: random access reads exactly one example (as TFDS writes them).
# Uncompressed: JPEG bytes do not compress, and the default (brotli) costs ~70 ms per
# 4 MB example to write and a few ms per read. Uncompressed records also let
# `data_pipeline.shard_reader` read a clip's frames straight from the mapped file.
ARRAY_RECORD_OPTIONS = "group_size:1,uncompressed"
_DECORD_ERRORS = (DECORDError, RuntimeError, AssertionError)
_DECODE_CHUNK = 32  # Frames decoded per decord call: bounded memory for long videos.


def features_for(class_names: Sequence[str]) -> tfds.features.FeaturesDict:
    """The TFDS features of prepared shards."""
    return tfds.features.FeaturesDict(
        {
            "video": tfds.features.Sequence(
                tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg")
            ),
            "label": tfds.features.ClassLabel(names=list(class_names)),
            "path": tfds.features.Text(),
            "num_frames": tfds.features.Scalar(dtype=np.int32),
            "fps": tfds.features.Scalar(dtype=np.float32),
        }
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    """What decides the bytes of the shards; a resumed run must use the same."""

    short_side: int = 256
    fps: float = 0.0
    quality: int = 90
    videos_per_shard: int = 64


# ---------------------------------------------------------------------------------------
# One video -> JPEG frames
# ---------------------------------------------------------------------------------------


def resample_indices(num_frames: int, native_fps: float, fps: float) -> np.ndarray:
    """Frame indices at ``fps`` from a video of ``num_frames`` at ``native_fps``.

    Frame k of the output is native frame ``floor(k * native_fps / fps)``. With ``fps``
    0, unknown native rate, or ``fps >= native_fps`` all frames are kept (no upsampling).
    """
    if fps <= 0 or native_fps <= 0 or fps >= native_fps:
        return np.arange(num_frames, dtype=np.int64)
    count = max(1, int(np.floor(num_frames * fps / native_fps)))
    # The small epsilon keeps k * native / fps = integer exactly on that integer.
    indices = np.floor(np.arange(count) * (native_fps / fps) + 1e-6).astype(np.int64)
    return np.minimum(indices, num_frames - 1)


def _encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _finish_frames(frames: np.ndarray, settings: Settings) -> list[bytes]:
    if settings.short_side > 0:
        frames = transforms.resize_short_side(frames, settings.short_side)
    return [_encode_jpeg(frame, settings.quality) for frame in frames]


def _video_jpegs(path: str, settings: Settings) -> tuple[list[bytes], float, int]:
    """Decodes a video to JPEG frames. Returns (jpegs, stored fps, frames cut off)."""
    reader = video_lib.open_video(path)
    native_fps = float(reader.get_avg_fps())
    wanted = resample_indices(len(reader), native_fps, settings.fps)
    stored_fps = settings.fps if len(wanted) < len(reader) else native_fps
    jpegs: list[bytes] = []
    for start in range(0, len(wanted), _DECODE_CHUNK):
        chunk = wanted[start : start + _DECODE_CHUNK]
        try:
            frames = reader.get_batch(chunk).asnumpy()  # [n, H, W, 3]
        except _DECORD_ERRORS:
            # The careful reader retries each frame with fresh decoders (decord's failures
            # can be thread timing); the first frame that still fails ends the video.
            frames = []
            for index in chunk.tolist():
                try:
                    frames.append(video_lib.read_video_frames(path, [index])[0])
                except video_lib.VideoDecodeError:
                    break
            if frames:
                jpegs.extend(_finish_frames(np.stack(frames), settings))
            cut = len(wanted) - len(jpegs)
            if cut == 0:
                reader = video_lib.open_video(path)  # The old decoder stays failed.
                continue
            if 2 * len(jpegs) < len(wanted):
                raise video_lib.VideoDecodeError(
                    f"cannot decode video {path}: only {len(jpegs)} of {len(wanted)} frames decode"
                )
            return jpegs, stored_fps, cut
        jpegs.extend(_finish_frames(frames, settings))
    if not jpegs:
        raise video_lib.VideoDecodeError(f"cannot decode video {path}: no frames")
    return jpegs, stored_fps, 0


def _frame_folder_jpegs(record: dict, settings: Settings) -> tuple[list[bytes], float, int]:
    num_frames = record["num_frames"] or sources_lib.count_frames(record["path"])
    if num_frames < 1:
        raise video_lib.VideoDecodeError(f"frame folder {record['path']} has no frames")
    jpegs: list[bytes] = []
    for start in range(0, num_frames, _DECODE_CHUNK):
        indices = np.arange(start, min(num_frames, start + _DECODE_CHUNK))
        jpegs.extend(_finish_frames(video_lib.read_frame_folder(record["path"], indices), settings))
    return jpegs, 0.0, 0  # A frame folder does not know its frame rate.


def encode_entry(record: dict, settings: Settings) -> tuple[list[bytes], float, int]:
    """Decodes one list entry to JPEG frames: ``(jpegs, fps, frames cut off the tail)``.

    Raises:
      FileNotFoundError, VideoDecodeError: The entry is unreadable.
    """
    if record["kind"] == "frames":
        return _frame_folder_jpegs(record, settings)
    return _video_jpegs(record["path"], settings)


# ---------------------------------------------------------------------------------------
# Shards
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _ShardTask:
    shard: int
    final_path: str
    state_path: str
    entries: list  # [(line number, path as written, record)]
    class_names: list
    settings: Settings


def _set_parent_death_signal() -> None:
    # A pool worker should not outlive a killed `prepare` and keep writing (Linux only;
    # elsewhere the worker finishes its shard and exits).
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _write_shard(task: _ShardTask) -> dict:
    """Writes one shard (temp file, result file, rename); returns its result."""
    from array_record.python import array_record_module

    features = features_for(task.class_names)
    serializer = example_serializer.ExampleSerializer(features.get_serialized_info())
    final = epath.Path(task.final_path)
    local = not _is_remote(task.final_path)
    # Same folder locally, so the rename is atomic; a local temp file for remote output,
    # copied in one piece at the end.
    if local:
        tmp = f"{task.final_path}.tmp-{os.getpid()}"
    else:
        tmp = os.path.join(tempfile.mkdtemp(), final.name)
    skipped, truncated = [], []
    num_examples = 0
    writer = array_record_module.ArrayRecordWriter(tmp, ARRAY_RECORD_OPTIONS)
    try:
        for line, written_path, record in task.entries:
            try:
                jpegs, fps, cut = encode_entry(record, task.settings)
            except (OSError, ValueError) as e:
                skipped.append({"line": line, "path": written_path, "error": str(e)})
                logging.warning("skipping %s (line %d): %s", written_path, line, e)
                continue
            if cut:
                truncated.append({"line": line, "path": written_path, "frames_cut": cut})
            example = {
                "video": jpegs,
                "label": record["label"],
                "path": written_path,
                "num_frames": len(jpegs),
                "fps": fps,
            }
            # What features.serialize_example does, but with the proto's map entries in a
            # fixed order: by default it follows string hashing, which differs between
            # processes, and shards would not be byte-identical across runs.
            proto = serializer.get_tf_example(features.encode_example(example))
            writer.write(proto.SerializeToString(deterministic=True))
            num_examples += 1
    finally:
        writer.close()
    result = {
        "shard": task.shard,
        "num_examples": num_examples,
        "num_bytes": os.path.getsize(tmp),
        "skipped": skipped,
        "truncated": truncated,
    }
    _write_json_atomic(epath.Path(task.state_path), result)
    if local:
        os.replace(tmp, task.final_path)
    else:
        epath.Path(tmp).copy(final, overwrite=True)
        os.remove(tmp)
        os.rmdir(os.path.dirname(tmp))
    return result


def _is_remote(path: str) -> bool:
    return "://" in path


def _write_json_atomic(path: epath.Path, value) -> None:
    text = json.dumps(value, indent=1, sort_keys=True) + "\n"
    if _is_remote(os.fspath(path)):
        path.write_text(text)  # Object stores publish an object only once it is complete.
        return
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    tmp.write_text(text)
    os.replace(tmp, path)


def shard_path(builder_dir: epath.Path, name: str, split: str, shard: int, num_shards: int):
    """File name of one shard in TFDS's default template."""
    return builder_dir / f"{name}-{split}.{FILE_FORMAT}-{shard:05d}-of-{num_shards:05d}"


def _file_sha256(path: epath.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_dataset_info(builder_dir: epath.Path, name: str, class_names, splits) -> None:
    """Writes dataset_info.json / features.json for the finished splits.

    The same steps as ``tfds.folder_dataset.write_metadata``, which cannot be used: it
    insists that every split with files in the folder be listed, and another split may
    still be half-written by a concurrent run.
    """
    template = tfds.core.ShardedFileTemplate(
        data_dir=builder_dir,
        template=tfds.core.naming.DEFAULT_FILENAME_TEMPLATE,
        dataset_name=name,
        filetype_suffix=FILE_FORMAT,
    )
    identity = tfds.core.DatasetIdentity(
        name=name,
        version=tfds.core.Version(VERSION),
        data_dir=os.fspath(builder_dir),
        module_name="",
    )
    info = tfds.core.DatasetInfo(
        builder=identity,
        features=features_for(class_names),
        description="Video clips as JPEG frames, written by data_pipeline.prepare.",
    )
    info.set_file_format(FILE_FORMAT)
    split_infos = [
        tfds.core.SplitInfo(
            name=split, shard_lengths=lengths, num_bytes=num_bytes, filename_template=template
        ).to_proto()
        for split, (lengths, num_bytes) in sorted(splits.items())
    ]
    info.set_splits(
        tfds.core.SplitDict.from_proto(repeated_split_infos=split_infos, filename_template=template)
    )
    info.write_to_directory(builder_dir)


def _finished_splits(builder_dir: epath.Path, class_names) -> dict:
    """{split: (shard_lengths, num_bytes)} of every split whose summary exists."""
    splits = {}
    for summary_path in sorted(builder_dir.glob("prepare-*.json")):
        summary = json.loads(summary_path.read_text())
        if summary["class_names_sha256"] != _names_hash(class_names):
            raise ValueError(
                f"split {summary['split']} in {builder_dir} was prepared with other labels; "
                f"use another --output or --name"
            )
        splits[summary["split"]] = (summary["shard_lengths"], summary["num_bytes"])
    return splits


def _names_hash(class_names) -> str:
    return hashlib.sha256("\n".join(class_names).encode("utf-8")).hexdigest()


def default_split(list_path: str) -> str:
    """The split name a list file gets by default: its file name without extension."""
    stem = os.path.splitext(os.path.basename(list_path))[0]
    return re.sub(r"\W", "_", stem) or "train"


def prepare(
    list_path: str,
    labels: str,
    output: str,
    *,
    name: str = "videos",
    split: str | None = None,
    root: str | None = None,
    settings: Settings = Settings(),
    workers: int = 0,
    kind: str | None = None,
) -> dict:
    """Writes (or finishes writing) one split; see the module docstring.

    Args:
      list_path: Video list (or frame-folder list) file.
      labels: Label CSV or built-in label-set name.
      output: The TFDS ``data_dir``; the dataset goes to ``output/name/1.0.0``.
      name: Dataset name.
      split: Split name; `default_split` of the list file if None.
      root: Folder that relative list paths are relative to.
      settings: Frame size, rate, JPEG quality and shard size.
      workers: Worker processes; 0 writes in this process.
      kind: Forces ``"video"`` or ``"frames"`` for the list entries.

    Returns:
      The summary that is also written to ``prepare-<split>.json``.
    """
    split = split or default_split(list_path)
    if not re.fullmatch(r"\w+", split):
        raise ValueError(f"split name must be letters, digits and '_', got {split!r}")
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"dataset name must be lowercase letters, digits and '_', got {name!r}")
    class_names = labels_lib.read_labels(labels)
    source = sources_lib.VideoClipSource(list_path, root=root, labels=class_names, kind=kind)
    lines = epath.Path(list_path).read_text().splitlines()
    builder_dir = epath.Path(output) / name / VERSION
    state_dir = builder_dir / "prepare_state" / split
    state_dir.mkdir(parents=True, exist_ok=True)

    num_entries = len(source)
    per_shard = settings.videos_per_shard
    num_shards = max(1, -(-num_entries // per_shard))
    config = {
        "list_sha256": _file_sha256(epath.Path(list_path)),
        "class_names_sha256": _names_hash(class_names),
        "root": root,
        "kind": kind,
        "settings": dataclasses.asdict(settings),
        "num_entries": num_entries,
        "num_shards": num_shards,
    }
    config_path = state_dir / "config.json"
    if config_path.exists():
        previous = json.loads(config_path.read_text())
        if previous != config:
            changed = sorted(k for k in config if previous.get(k) != config[k])
            raise ValueError(
                f"{builder_dir} already holds split {split!r} prepared from other input or "
                f"settings (differs in {changed}); use another --output, --name or --split"
            )
    else:
        _write_json_atomic(config_path, config)

    # Temp files of a killed run are incomplete by definition.
    for stale in builder_dir.glob(f"{name}-{split}.{FILE_FORMAT}-*.tmp-*"):
        stale.unlink()

    tasks, results = [], {}
    for shard in range(num_shards):
        final = shard_path(builder_dir, name, split, shard, num_shards)
        state = state_dir / f"shard-{shard:05d}.json"
        if final.exists() and state.exists():  # The result file is written first.
            results[shard] = json.loads(state.read_text())
            continue
        lo, hi = shard * per_shard, min(num_entries, (shard + 1) * per_shard)
        entries = []
        for i in range(lo, hi):
            line = source.line_numbers[i]
            # The path as written (not resolved against --root), so shards stay portable.
            entries.append((line, lines[line - 1].split()[0], source[i]))
        tasks.append(
            _ShardTask(shard, os.fspath(final), os.fspath(state), entries, class_names, settings)
        )
    logging.info(
        "split %s: %d videos in %d shards, %d already done, %d to write with %d workers",
        split,
        num_entries,
        num_shards,
        len(results),
        len(tasks),
        workers,
    )
    start = time.time()
    if workers > 0 and tasks:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, len(tasks)), initializer=_set_parent_death_signal) as pool:
            for result in pool.imap_unordered(_write_shard, tasks):
                results[result["shard"]] = result
                _log_progress(len(results), num_shards, start)
    else:
        for task in tasks:
            result = _write_shard(task)
            results[result["shard"]] = result
            _log_progress(len(results), num_shards, start)

    ordered = [results[k] for k in range(num_shards)]
    skipped = [s for r in ordered for s in r["skipped"]]
    truncated = [t for r in ordered for t in r["truncated"]]
    summary = {
        "split": split,
        "name": name,
        "builder_dir": os.fspath(builder_dir),
        "entries": num_entries,
        "written": sum(r["num_examples"] for r in ordered),
        "skipped": skipped,
        "truncated": truncated,
        "shard_lengths": [r["num_examples"] for r in ordered],
        "num_bytes": sum(r["num_bytes"] for r in ordered),
        "class_names_sha256": _names_hash(class_names),
    }
    (builder_dir / f"skipped-{split}.txt").write_text(
        "".join(f"{s['line']}\t{s['path']}\t{s['error']}\n" for s in skipped)
    )
    _write_json_atomic(builder_dir / f"prepare-{split}.json", summary)
    _write_dataset_info(builder_dir, name, class_names, _finished_splits(builder_dir, class_names))
    return summary


def _log_progress(done: int, total: int, start: float) -> None:
    logging.info("shard %d/%d done (%.0f s)", done, total, time.time() - start)


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


FLAGS = flags.FLAGS


def _define_flags() -> None:
    """Defines the command-line flags.

    Called only when the module runs as a program: importing it (tests, worker
    processes, other tools) must not define global flags that could clash.
    """
    flags.DEFINE_string("list", None, "Video list file ('<path> <label>' lines).")
    flags.DEFINE_string("labels", None, "Label CSV (id,name) or built-in name.")
    flags.DEFINE_string("output", None, "TFDS data_dir to write to.")
    flags.DEFINE_string("name", "videos", "Dataset name (folder under --output).")
    flags.DEFINE_string("split", None, "Split name (default: the list file's name).")
    flags.DEFINE_string("root", None, "Folder that relative list paths are relative to.")
    flags.DEFINE_enum("kind", None, ["video", "frames"], "Force the kind of list entries.")
    flags.DEFINE_integer("short_side", 256, "Resize the short side to this (0: keep).")
    flags.DEFINE_float("fps", 0.0, "Frames per second to keep (0: all, the native rate).")
    flags.DEFINE_integer("quality", 90, "JPEG quality.")
    flags.DEFINE_integer("workers", os.cpu_count() or 1, "Worker processes (0: none).")
    flags.DEFINE_integer("videos_per_shard", 64, "List entries per shard.")


def main(argv: Sequence[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    for name in ("list", "labels", "output"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--{name} is required")
    summary = prepare(
        FLAGS.list,
        FLAGS.labels,
        FLAGS.output,
        name=FLAGS.name,
        split=FLAGS.split,
        root=FLAGS.root,
        settings=Settings(
            short_side=FLAGS.short_side,
            fps=FLAGS.fps,
            quality=FLAGS.quality,
            videos_per_shard=FLAGS.videos_per_shard,
        ),
        workers=FLAGS.workers,
        kind=FLAGS.kind,
    )
    print(
        f"{summary['builder_dir']}: split {summary['split']!r}: {summary['written']} of "
        f"{summary['entries']} videos written in {len(summary['shard_lengths'])} shards "
        f"({summary['num_bytes'] / 2**20:.1f} MiB); {len(summary['skipped'])} skipped, "
        f"{len(summary['truncated'])} truncated"
    )
    for s in summary["skipped"]:
        print(f"  skipped line {s['line']}: {s['path']}: {s['error']}")
    print(
        f"read with: tfds.data_source({summary['name']!r}, data_dir={FLAGS.output!r}, "
        f"split={summary['split']!r})"
    )
    return 0


if __name__ == "__main__":
    _define_flags()
    app.run(main)
