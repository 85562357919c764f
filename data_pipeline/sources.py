"""Where clips come from: list files over videos or frame folders, and TFDS shards.

Every source is a grain ``RandomAccessDataSource`` (``__len__`` and ``__getitem__``) whose
items are small records; decoding happens later, in `load_clip`, so that a pipeline can
decide which frames to decode (TSN sampling picks T of a video's F frames) and can
replace a sample that does not decode.

Records (plain dicts, cheap to pickle into grain worker processes)::

    {"path": str, "label": int, "num_frames": int | None, "kind": "frames" | "video"}

from list files, and for TFDS examples additionally ``"video"``: the F encoded JPEG
frames (a sequence of ``bytes``: `EncodedFrames` or an object array) or an
``[F, H, W, 3]`` uint8 array, with ``kind == "tfds"``.

List files (one entry a line, fields separated by whitespace; paths without spaces, as
in the original):

* ``<frame_dir> <num_frames> <label>``: ActionCLIP / TSN / mmaction2 raw-frame lists over
  folders of ``img_00001.jpg``, ``img_00002.jpg``, ... (1-based);
* ``<video_path> <label>``: videos, decoded with decord or PyAV (`video.BACKENDS`);
* ``<video_path> <num_frames> <label>``: the three-column form naming a video file (a
  path with a video extension, see `VIDEO_EXTENSIONS`). The frame count in the list is
  kept but not trusted: decoding uses the count the decoder reports for the file.

Relative paths are joined to ``root`` when one is given, otherwise they are relative to
the working directory, as in the original. Paths go through ``etils.epath``, so lists,
frames and videos may live on ``gs://``.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from data_pipeline import labels as labels_lib
from data_pipeline import shard_reader
from data_pipeline import video as video_lib

Record = dict[str, Any]
IndicesFn = Callable[[int], np.ndarray]

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".wmv", ".3gp"}
)
KINDS = ("frames", "video")


class ListFileError(ValueError):
    """A list file has a malformed line or a label id out of range; names file and line.

    Attributes:
      line: The 1-based line number (None for whole-file problems).
    """

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


class LabelRangeError(ListFileError):
    """A label id outside ``[0, num_classes)``."""


# ---------------------------------------------------------------------------------------
# List files
# ---------------------------------------------------------------------------------------


def resolve_path(path: str, root: str | os.PathLike | None) -> str:
    """Joins a relative list-file path to ``root``; absolute paths and URLs stay as they are."""
    if root is None or "://" in path or os.path.isabs(path):
        return path
    return os.fspath(epath.Path(root) / path)


def _guess_kind(path: str, num_columns: int) -> str:
    if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS:
        return "video"
    # Three columns without a video extension is the original's frame-folder list; two
    # columns carry no frame count, which only a video can supply by itself.
    return "frames" if num_columns == 3 else "video"


def parse_list_file(
    list_path: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    num_classes: int | None = None,
    kind: str | None = None,
    problems: list[ListFileError] | None = None,
) -> tuple[list[Record], list[int]]:
    """Reads a list file into records.

    Args:
      list_path: The list file (local or ``gs://``).
      root: Folder that relative paths in the list are relative to.
      num_classes: When given, every label must be in ``[0, num_classes)``.
      kind: ``"frames"`` or ``"video"`` forces the kind of every entry; ``None`` guesses
        it per line (a video extension means a video; otherwise three columns mean a
        frame folder and two columns a video).
      problems: If given, a bad line is appended here (as a `ListFileError` or
        `LabelRangeError`, with ``.line``) and skipped, instead of raised.

    Returns:
      ``(records, line_numbers)``: one record per entry, and the 1-based line each came
      from (for messages). Blank lines are skipped.

    Raises:
      FileNotFoundError: The list file does not exist.
      ListFileError: A line does not have 2 or 3 fields, a number does not parse, a frame
        count is below 1, a label is negative or ``>= num_classes`` (`LabelRangeError`),
        a line is not UTF-8 text, or the file has no entries. The message is
        ``<file>:<line>: <what is wrong>``.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
    file = epath.Path(list_path)
    try:
        data = file.read_bytes()
    except FileNotFoundError as e:
        raise FileNotFoundError(f"list file not found: {file}") from e
    records: list[Record] = []
    line_numbers: list[int] = []
    for line_number, line in enumerate(_text_lines(data, str(file)), start=1):
        try:
            if isinstance(line, ListFileError):
                raise line
            if not line.split():
                continue
            record = _parse_line(line, f"{file}:{line_number}", line_number, num_classes, kind)
        except ListFileError as e:
            if problems is None:
                raise
            problems.append(e)
            continue
        record["path"] = resolve_path(record["path"], root)
        records.append(record)
        line_numbers.append(line_number)
    if not records and problems is None:
        raise ListFileError(f"{file}: no entries")
    return records, line_numbers


def _text_lines(data: bytes, where: str) -> list[str | ListFileError]:
    """The lines of a UTF-8 text file; each line that does not decode is a `ListFileError`."""
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        pass
    lines: list[str | ListFileError] = []
    offset = 0  # Of the line in the file: `not_utf8` counts lines and columns from it.
    for line_number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as e:
            error = UnicodeDecodeError(e.encoding, data, offset + e.start, offset + e.end, e.reason)
            lines.append(ListFileError(labels_lib.not_utf8(data, error, where), line_number))
        offset += len(raw) + 1
    if lines and lines[-1] == "":
        lines.pop()  # The final newline ends the last line; it does not start one.
    return lines


def _parse_line(
    line: str, where: str, line_number: int, num_classes: int | None, kind: str | None
) -> Record:
    fields = line.split()
    if len(fields) not in (2, 3):
        raise ListFileError(
            f"{where}: expected '<path> <num_frames> <label>' or '<path> <label>', got "
            f"{len(fields)} fields (paths must not contain spaces): {line.strip()!r}",
            line_number,
        )
    path = fields[0]
    num_frames = None
    if len(fields) == 3:
        num_frames = _parse_int(fields[1], "num_frames", where, line_number)
        if num_frames < 1:
            raise ListFileError(f"{where}: num_frames must be >= 1, got {num_frames}", line_number)
    label = _parse_int(fields[-1], "label", where, line_number)
    if label < 0 or (num_classes is not None and label >= num_classes):
        limit = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise LabelRangeError(f"{where}: label id {label} out of range {limit}", line_number)
    return {
        "path": path,
        "label": label,
        "num_frames": num_frames,
        "kind": kind or _guess_kind(path, len(fields)),
    }


def _parse_int(text: str, what: str, where: str, line_number: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise ListFileError(f"{where}: {what} {text!r} is not an integer", line_number) from None


def _num_classes(labels: str | os.PathLike | Sequence[str] | int | None) -> int | None:
    if labels is None or isinstance(labels, int):
        return labels
    if isinstance(labels, (str, os.PathLike)):
        return len(labels_lib.read_labels(labels))
    return len(labels)


class VideoClipSource:
    """A list file as a grain ``RandomAccessDataSource`` of records.

    Attributes:
      list_path: The list file.
      records: One record per entry (see the module docstring).
      line_numbers: The list-file line of each record.
    """

    def __init__(
        self,
        list_path: str | os.PathLike,
        *,
        root: str | os.PathLike | None = None,
        labels: str | os.PathLike | Sequence[str] | int | None = None,
        kind: str | None = None,
    ):
        """Reads and checks the list file.

        Args:
          list_path: The list file.
          root: Folder that relative paths are relative to.
          labels: The class names, a label CSV path / built-in name, or the class count;
            labels in the list are checked against it. ``None`` skips the range check.
          kind: See `parse_list_file`.
        """
        self.list_path = os.fspath(list_path)
        self.records, self.line_numbers = parse_list_file(
            list_path, root=root, num_classes=_num_classes(labels), kind=kind
        )

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Record:
        return dict(self.records[index])

    def __repr__(self) -> str:
        return f"VideoClipSource({self.list_path!r}, {len(self)} entries)"


# ---------------------------------------------------------------------------------------
# TFDS datasets (prepared shards, or any TFDS dataset with `video` and `label` features)
# ---------------------------------------------------------------------------------------


class KeepEncodedFrames(tfds.decode.Decoder):
    """A TFDS decoder that leaves a sequence of images encoded (JPEG/PNG bytes).

    TFDS would otherwise decode every frame of a video on each read; TSN sampling needs
    only T of them. (``tfds.decode.SkipDecoding`` does not work with the NumPy reading
    path that ``tfds.data_source`` uses, hence this class.)
    """

    def decode_example(self, serialized_example):
        return serialized_example

    def decode_example_np(self, serialized_example):
        return serialized_example

    def decode_batch_example_np(self, serialized_example):
        return serialized_example  # [F] object array of bytes.


def is_tfds_dir(path: str | os.PathLike) -> bool:
    """True if ``path`` is a TFDS dataset folder (it holds ``dataset_info.json``)."""
    try:
        return (epath.Path(path) / "dataset_info.json").exists()
    except (OSError, ValueError):
        return False


class TfdsClipSource:
    """A TFDS split (array_record) as a grain ``RandomAccessDataSource`` of records.

    Reads with ``tfds.data_source``; TensorFlow is not needed. The dataset needs a
    ``video`` feature (a sequence of encoded images, as `data_pipeline.prepare` writes,
    or a ``[F, H, W, 3]`` uint8 tensor) and a ``label`` feature; ``path`` and
    ``num_frames`` features are used when present.

    Encoded videos take a fast route: the serialized ``tf.Example`` is scanned for the
    byte ranges of the frames (`parse_example_ranges`) and only the frames a clip samples
    are copied and decoded. TFDS's own parsing would copy all F frames (a few MB for a
    10 s clip) into a padded array on every read. Local shards written uncompressed (as
    `data_pipeline.prepare` writes them) are not even read whole: the scan runs on the
    memory-mapped file (`shard_reader`), so a clip costs the bytes of its frames and a
    few bytes per frame of the example's structure; other shards (compressed, remote)
    are read with ``ArrayRecordReader``.

    Attributes:
      class_names: The ``label`` feature's names, if it is a ``ClassLabel``.
    """

    def __init__(
        self,
        name_or_dir: str | os.PathLike,
        *,
        split: str = "train",
        data_dir: str | os.PathLike | None = None,
        fast: bool = True,
        direct: bool = True,
    ):
        """Opens the split.

        Args:
          name_or_dir: A dataset folder (``<data_dir>/<name>/<version>``, the folder with
            ``dataset_info.json``) or a dataset name found under ``data_dir``.
          split: A TFDS split, e.g. ``"train"``, ``"validation"``, ``"train[:10%]"``.
          data_dir: Where to look the name up (TFDS's default when ``None``).
          fast: Use the fast route for encoded videos (False: TFDS's parser, for tests).
          direct: On the fast route, read uncompressed local shards through
            `shard_reader` (False: always through ``ArrayRecordReader``, which also
            verifies the chunk hashes).
        """
        self.name = os.fspath(name_or_dir)
        self.split = split
        if is_tfds_dir(name_or_dir):
            builder = tfds.builder_from_directory(os.fspath(name_or_dir))
        else:
            builder = tfds.builder(self.name, data_dir=data_dir)
        features = builder.info.features
        for key in ("video", "label"):
            if key not in features:
                raise ValueError(
                    f"TFDS dataset {self.name} has no {key!r} feature (it has "
                    f"{sorted(features.keys())})"
                )
        video = features["video"]
        encoded = isinstance(video, tfds.features.Sequence) and isinstance(
            video.feature, tfds.features.Image
        )
        label = features["label"]
        self.class_names = (
            list(label.names) if isinstance(label, tfds.features.ClassLabel) else None
        )
        self._has_path = "path" in features and isinstance(features["path"], tfds.features.Text)
        scalar_label = isinstance(label, (tfds.features.ClassLabel, tfds.features.Scalar))
        self._fast = fast and encoded and scalar_label
        self._files: list[tuple[shard_reader.RecordFile, int]] = []  # (file, skip)
        self._file_starts: list[int] = []  # Index of each file's first example.
        if self._fast:
            self._raw = builder.as_data_source(
                split=split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
            )
            if direct:
                self._open_direct(builder, split)
        # The TFDS route: every other layout, and examples the fast scan cannot read.
        decoders = {"video": KeepEncodedFrames()} if encoded else None
        self._source = builder.as_data_source(split=split, decoders=decoders)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> Record:
        if self._fast:
            record = self._fast_record(index)
            if record is not None:
                return record
        example = self._source[index]
        frames = example["video"]
        if isinstance(frames, list):
            frames = np.asarray(frames, dtype=object)
        path = example["path"] if self._has_path else self._default_path(index)
        if isinstance(path, bytes):
            path = path.decode("utf-8")
        return {
            "path": str(path),
            "label": int(example["label"]),
            "num_frames": len(frames),
            "kind": "tfds",
            "video": frames,
        }

    def _default_path(self, index: int) -> str:
        return f"{self.name}/{self.split}[{index}]"

    def _open_direct(self, builder, split: str) -> None:
        # The split's files in the order in which the TFDS source numbers the examples.
        if builder.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
            return
        files, starts, total = [], [], 0
        for instruction in builder.info.splits[split].file_instructions:
            take = instruction.take
            if take < 0:
                take = instruction.examples_in_shard - instruction.skip
            file = shard_reader.RecordFile(
                os.fspath(instruction.filename), instruction.examples_in_shard
            )
            files.append((file, instruction.skip))
            starts.append(total)
            total += take
        if total == len(self._raw):  # Otherwise TFDS numbers them differently: leave it.
            self._files, self._file_starts = files, starts

    def _serialized(self, index: int):
        """The serialized example: a `shard_reader.SplicedRecord` or ``bytes``."""
        if self._files and 0 <= index < len(self._raw):
            k = bisect.bisect_right(self._file_starts, index) - 1
            file, skip = self._files[k]
            try:
                record = file.record(skip + index - self._file_starts[k])
            except IndexError:
                record = None  # A short file: let ArrayRecordReader report it.
            if record is not None:
                return record
        return self._raw[index]

    def _fast_record(self, index: int) -> Record | None:
        raw = self._serialized(index)
        try:
            fields = parse_example_ranges(raw)
        except (IndexError, ValueError):
            return None  # Not a plain tf.Example: let TFDS parse it (and report errors).
        video, label = fields.get("video"), fields.get("label")
        if video is None or video[0] != "bytes" or label is None or label[0] != "int64":
            return None
        if len(label[1]) != 1:
            return None
        view = _view(raw)
        path = self._default_path(index)
        if self._has_path and fields.get("path", ("",))[0] == "bytes":
            start, stop = fields["path"][1][0]
            path = bytes(view[start:stop]).decode("utf-8")
        frames = EncodedFrames(view, video[1])
        return {
            "path": path,
            "label": int(label[1][0]),
            "num_frames": len(frames),
            "kind": "tfds",
            "video": frames,
        }

    def __repr__(self) -> str:
        return f"TfdsClipSource({self.name!r}, split={self.split!r}, {len(self)} examples)"


def _view(serialized):
    # Byte strings are sliced through a memoryview (no copy until bytes() is taken); a
    # SplicedRecord already copies only the slices asked for.
    if isinstance(serialized, shard_reader.SplicedRecord):
        return serialized
    return memoryview(serialized)


class EncodedFrames:
    """The encoded frames of one example: byte ranges into the serialized record.

    Indexing returns the ``bytes`` of one frame; nothing is copied before that.
    """

    def __init__(self, buffer, ranges: list[tuple[int, int]]):
        self._buffer = buffer
        self._ranges = ranges

    def __len__(self) -> int:
        return len(self._ranges)

    def __getitem__(self, index: int) -> bytes:
        start, stop = self._ranges[index]
        return bytes(self._buffer[start:stop])


def _fields(buf, start: int, stop: int):
    """Protobuf wire format: yields ``(field, wire type, start, stop or value)``."""
    pos = start
    while pos < stop:
        # The key and a varint after it take at most 20 bytes: one slice of the buffer
        # (cheap for a memoryview; one read for a SplicedRecord) instead of one access per
        # byte. A varint that runs past the buffer raises ValueError (`read_varint`).
        head = buf[pos : pos + 20]
        key, i = shard_reader.read_varint(head, 0)
        field, wire = key >> 3, key & 7
        if wire == 2:  # Length-delimited: the payload's range.
            length, i = shard_reader.read_varint(head, i)
            pos += i
            yield field, wire, pos, pos + length
            pos += length
        elif wire == 0:  # Varint: its value.
            value, i = shard_reader.read_varint(head, i)
            pos += i
            yield field, wire, value, None
        elif wire == 5:
            pos += i
            yield field, wire, pos, pos + 4
            pos += 4
        elif wire == 1:
            pos += i
            yield field, wire, pos, pos + 8
            pos += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    if pos != stop:
        raise ValueError("truncated protobuf message")


def _feature_values(buf, start: int, stop: int) -> tuple[str, list]:
    # Feature: oneof bytes_list = 1, float_list = 2, int64_list = 3; each a list in
    # field 1, numbers packed (wire type 2) or not.
    for kind_field, _, kind_start, kind_stop in _fields(buf, start, stop):
        kind = {1: "bytes", 2: "float", 3: "int64"}.get(kind_field)
        values: list = []
        for field, wire, a, b in _fields(buf, kind_start, kind_stop):
            if field != 1:
                continue
            if kind == "bytes":
                values.append((a, b))
            elif kind == "int64" and wire == 0:
                values.append(a - (1 << 64) if a >= 1 << 63 else a)
            elif kind == "int64":
                pos = a
                while pos < b:
                    value, pos = shard_reader.read_varint(buf, pos)
                    values.append(value - (1 << 64) if value >= 1 << 63 else value)
            elif kind == "float":
                values.extend(np.frombuffer(bytes(buf[a:b]), "<f4").tolist())
        return kind, values
    return "bytes", []  # An empty Feature: an empty list.


def parse_example_ranges(serialized) -> dict[str, tuple[str, list]]:
    """Scans a serialized ``tf.train.Example`` without copying its byte values.

    Args:
      serialized: ``bytes`` (or anything with the buffer protocol), or a
        `shard_reader.SplicedRecord`.

    Returns:
      ``{key: (kind, values)}`` with kind ``"bytes"`` (values: ``(start, stop)`` byte
      ranges into ``serialized``), ``"int64"`` or ``"float"`` (values: numbers).

    Raises:
      ValueError, IndexError: ``serialized`` is not a well-formed ``tf.train.Example``.
    """
    buf = _view(serialized)
    out = {}
    for field, wire, start, stop in _fields(buf, 0, len(buf)):
        if field != 1 or wire != 2:  # Example.features
            continue
        for entry_field, entry_wire, entry_start, entry_stop in _fields(buf, start, stop):
            if entry_field != 1 or entry_wire != 2:  # Features.feature (a map entry)
                continue
            key, value = None, None
            for f, _, a, b in _fields(buf, entry_start, entry_stop):
                if f == 1:
                    key = bytes(buf[a:b]).decode("utf-8")
                elif f == 2:
                    value = (a, b)
            if key is not None:
                out[key] = _feature_values(buf, *value) if value else ("bytes", [])
    return out


# ---------------------------------------------------------------------------------------
# Opening any of them
# ---------------------------------------------------------------------------------------


def open_source(
    data: Any,
    *,
    split: str | None = "train",
    root: str | os.PathLike | None = None,
    labels: str | os.PathLike | Sequence[str] | int | None = None,
    kind: str | None = None,
    tfds_data_dir: str | os.PathLike | None = None,
):
    """Opens the data a pipeline reads.

    Args:
      data: A list file; a TFDS dataset folder (with ``dataset_info.json``, e.g. what
        `data_pipeline.prepare` wrote); ``"tfds:<name>"`` for a TFDS dataset under
        ``tfds_data_dir``; or an object that already has ``__len__`` and ``__getitem__``
        returning records (returned as is).
      split: TFDS split (ignored for list files; required for TFDS).
      root: Folder that relative list-file paths are relative to.
      labels: Class names, a label CSV / built-in name, or the class count, to check the
        list's label ids against (and a TFDS ``ClassLabel``'s size).
      kind: Forces ``"frames"`` or ``"video"`` for list files.
      tfds_data_dir: ``data_dir`` for ``"tfds:<name>"``.

    Returns:
      A `VideoClipSource`, a `TfdsClipSource`, or ``data``.
    """
    if not isinstance(data, (str, os.PathLike)):
        return data
    text = os.fspath(data)
    is_tfds = text.startswith("tfds:") or is_tfds_dir(text)
    if not is_tfds:
        return VideoClipSource(text, root=root, labels=labels, kind=kind)
    if split is None:
        raise ValueError(f"TFDS dataset {text}: give the split to read")
    if text.startswith("tfds:"):
        source = TfdsClipSource(text[len("tfds:") :], split=split, data_dir=tfds_data_dir)
    else:
        source = TfdsClipSource(text, split=split)
    num_classes = _num_classes(labels)
    known = source.class_names
    if num_classes is not None and known is not None and len(known) != num_classes:
        raise ValueError(
            f"TFDS dataset {text} has {len(source.class_names)} classes, the label file "
            f"{num_classes}"
        )
    return source


# ---------------------------------------------------------------------------------------
# Decoding a clip
# ---------------------------------------------------------------------------------------


def _template_glob(image_tmpl: str) -> str:
    return re.sub(r"\{[^}]*\}", "*", image_tmpl)


def count_frames(frame_dir: str | os.PathLike, image_tmpl: str = "img_{:05d}.jpg") -> int:
    """Number of files in ``frame_dir`` that match the frame-name template."""
    folder = epath.Path(frame_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"frame folder not found: {folder}")
    return sum(1 for _ in folder.glob(_template_glob(image_tmpl)))


def decode_encoded_frames(encoded: Sequence[bytes], indices: np.ndarray, name: str) -> np.ndarray:
    """Decodes ``encoded[indices]`` (JPEG/PNG bytes) to ``[T, H, W, 3]`` uint8 RGB.

    Each distinct index is decoded once; only the requested frames are decoded
    (`video.decode_rgb_frames`).
    """
    return video_lib.decode_rgb_frames(
        lambda index: encoded[index],
        indices,
        lambda index: f"frame {index} of {name}",
        f"of {name}",
    )


def load_clip(
    record: Record,
    indices_fn: IndicesFn,
    *,
    image_tmpl: str = "img_{:05d}.jpg",
    index_bias: int = 1,
    decode_video: Callable[[str, IndicesFn], np.ndarray] = video_lib.read_clip,
) -> np.ndarray:
    """Decodes the frames of one record that ``indices_fn`` selects.

    Args:
      record: A record from any source here.
      indices_fn: Maps the video's frame count F to the 0-based frame indices to decode
        (e.g. ``lambda f: sampling.train_indices(f, 8, rng)``); called exactly once.
      image_tmpl: File-name template of frame folders.
      index_bias: Number of the first frame file (1: ``img_00001.jpg`` is frame 0).
      decode_video: Decodes a video file: ``(path, indices_fn) -> [T, H, W, 3]``;
        `video.read_clip` (decord, in this process) by default, a
        `processes.VideoDecoder` for another backend or a time limit. Frame folders and
        TFDS examples are JPEGs, decoded here.

    Returns:
      ``[len(indices), H, W, 3]`` uint8 RGB frames, in the order of the indices.

    Raises:
      FileNotFoundError: The video, frame folder or a frame file is missing.
      VideoDecodeError: Something is there but does not decode, or the decoder returned
        other frames than asked for.
    """
    kind = record["kind"]
    if kind == "video":
        return decode_video(record["path"], indices_fn)
    if kind == "frames":
        num_frames = record["num_frames"]
        if num_frames is None:
            num_frames = count_frames(record["path"], image_tmpl)
            if num_frames == 0:
                raise video_lib.VideoDecodeError(
                    f"frame folder {record['path']} has no files matching {image_tmpl!r}"
                )
        indices = np.asarray(indices_fn(num_frames), np.int64)
        return video_lib.read_frame_folder(record["path"], indices, image_tmpl, index_bias)
    if kind == "tfds":
        frames = record["video"]
        if len(frames) == 0:
            raise video_lib.VideoDecodeError(f"example {record['path']} has no frames")
        indices = np.asarray(indices_fn(len(frames)), np.int64)
        if isinstance(frames, np.ndarray) and frames.dtype != object:
            return np.asarray(frames[indices], np.uint8)  # Already decoded [F, H, W, 3].
        return decode_encoded_frames(frames, indices, record["path"])
    raise ValueError(f"unknown record kind {kind!r}")
