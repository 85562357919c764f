"""Label files: CSV ``id,name`` with ids ``0..C-1`` in row order, as in the original.

The original reads ``lists/kinetics_400_labels.csv`` and friends with pandas and takes the
row order as the class id. Here the file is checked instead of trusted: a wrong header, an
id that is not its row index, an empty or duplicate name is an error naming the file and
the line, because a silently shifted label table trains a model that is wrong everywhere.

Built-in label files ship once, as package data of ``actionclip_jax``
(``actionclip_jax/assets/labels/*.csv``). They are located through the import system
without importing ``actionclip_jax`` (whose ``__init__`` pulls in JAX), so the data
pipeline stays independent of the model code.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os

from etils import epath

# Short names users type (and configs hold) -> file names under assets/labels.
BUILTIN_LABEL_FILES = {
    "kinetics400": "kinetics_400_labels.csv",
    "kinetics600": "kinetics_600_labels.csv",
    "ucf101": "ucf_labels.csv",
    "hmdb51": "hmdb51_labels.csv",
    "kinetics400_base": "kinetics_400_base_labels.csv",
    "kinetics400_novel": "kinetics_400_novel_labels.csv",
    "ucf101_base": "ucf_101_base_labels.csv",
    "ucf101_novel": "ucf_101_novel_labels.csv",
    "hmdb51_base": "hmdb_51_base_labels.csv",
    "hmdb51_novel": "hmdb_51_novel_labels.csv",
    "kinetics600_zero_shot_split1": "k600_zero_shot_split1.csv",
    "kinetics600_zero_shot_split2": "k600_zero_shot_split2.csv",
    "kinetics600_zero_shot_split3": "k600_zero_shot_split3.csv",
}


class LabelFileError(ValueError):
    """A label file is missing a header, has a bad id or name; the message says where."""


def not_utf8(data: bytes, error: UnicodeDecodeError, where: str) -> str:
    """Says where a text file stops being UTF-8: ``<where>:<line>: ...`` and what to do.

    Args:
      data: The file's bytes.
      error: What ``data.decode("utf-8")`` raised.
      where: The file's name.
    """
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    return (
        f"{where}:{line}: not UTF-8 text (byte {data[error.start]:#04x} at column {column}); "
        f"save the file as UTF-8"
    )


def builtin_labels_dir() -> epath.Path:
    """The folder of the shipped label CSVs, found without importing ``actionclip_jax``."""
    spec = importlib.util.find_spec("actionclip_jax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package actionclip_jax is not installed; its assets hold the built-in label files"
        )
    return epath.Path(next(iter(spec.submodule_search_locations))) / "assets" / "labels"


def resolve_label_file(name_or_path: str | os.PathLike) -> epath.Path:
    """Turns a built-in label-set name or a path into the path of a label CSV.

    Args:
      name_or_path: One of `BUILTIN_LABEL_FILES` (``kinetics400``, ``ucf101``,
        ``hmdb51_novel``, ...), the file name of a shipped CSV (``ucf_labels.csv``), or a
        path (local or ``gs://``).

    Returns:
      The path. A built-in name always resolves; a path is returned as given, so a
      missing file is reported by `read_labels`.
    """
    text = os.fspath(name_or_path)
    key = text.lower().replace("-", "_")
    if key in BUILTIN_LABEL_FILES:
        return builtin_labels_dir() / BUILTIN_LABEL_FILES[key]
    if os.sep not in text and "://" not in text and text in BUILTIN_LABEL_FILES.values():
        local = epath.Path(text)
        if not local.exists():  # A file of that name in the working directory wins.
            return builtin_labels_dir() / text
    return epath.Path(text)


def read_labels(path: str | os.PathLike) -> list[str]:
    """Reads a label CSV (``id,name`` header, then ``0,<name>``, ``1,<name>``, ...).

    Args:
      path: A label file path or built-in name (see `resolve_label_file`).

    Returns:
      The class names; ``names[i]`` is the name of class ``i``.

    Raises:
      FileNotFoundError: The file does not exist.
      LabelFileError: The header is not ``id,name``, a row's id is not its 0-based row
        index, a name is empty or repeated, the file has no classes or is not UTF-8
        text. The message is ``<file>:<line>: <what is wrong>``.
    """
    file = resolve_label_file(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError as e:
        raise FileNotFoundError(f"label file not found: {file}") from e
    try:
        text = data.decode("utf-8-sig")  # -sig: tolerate a BOM from Excel.
    except UnicodeDecodeError as e:
        raise LabelFileError(not_utf8(data, e, str(file))) from None
    rows = csv.reader(io.StringIO(text))
    names: list[str] = []
    seen: dict[str, int] = {}
    header_done = False
    for row in rows:
        line = rows.line_num
        if not row or all(not cell.strip() for cell in row):
            continue  # Blank lines (a trailing newline or two) carry nothing.
        cells = [cell.strip() for cell in row]
        if not header_done:
            if [c.lower() for c in cells] != ["id", "name"]:
                raise LabelFileError(f"{file}:{line}: expected the header 'id,name', got {row}")
            header_done = True
            continue
        if len(cells) != 2:
            raise LabelFileError(
                f"{file}:{line}: expected 2 columns 'id,name', got {len(cells)}: {row}"
            )
        id_text, name = cells
        try:
            class_id = int(id_text)
        except ValueError:
            raise LabelFileError(f"{file}:{line}: id {id_text!r} is not an integer") from None
        if class_id != len(names):
            raise LabelFileError(
                f"{file}:{line}: id {class_id} out of order; ids must be 0, 1, 2, ... in row "
                f"order, expected {len(names)}"
            )
        if not name:
            raise LabelFileError(f"{file}:{line}: empty class name for id {class_id}")
        if name in seen:
            # Prompts identify a class by its text, so two ids with one name cannot be told
            # apart by the text encoder.
            raise LabelFileError(
                f"{file}:{line}: class name {name!r} repeats the name of line {seen[name]}"
            )
        seen[name] = line
        names.append(name)
    if not header_done:
        raise LabelFileError(f"{file}:1: empty label file (expected the header 'id,name')")
    if not names:
        raise LabelFileError(f"{file}: no classes after the header")
    return names
