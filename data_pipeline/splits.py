"""The standard protocols' list files and how new ones are drawn: built-in lists, zero-shot class
splits across data sets, few-shot draws.

Built-in list names (what configs hold, e.g. `"ucf101/val1"`) resolve to the files shipped in
`actionclip_jax/assets/splits/`, found without importing `actionclip_jax` (as `labels` finds the
label files); `BUILTIN_LISTS` also names the built-in label set each list's ids index. Drawing is
deterministic: every draw is seeded per item (class, split), so adding or reordering other items
does not change it.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping, Sequence

import numpy as np
from etils import epath

from data_pipeline import labels as label_files
from data_pipeline import sources

# ------------------------------------------------------------------------------- shipped lists

def splits_dir() -> epath.Path:
    """The folder of the shipped list files (beside the built-in label files)."""
    return label_files.builtin_labels_dir().parent / "splits"


def _builtin_lists() -> dict[str, tuple[str, str]]:
    """`name -> (path under assets/splits, built-in label name)` of every shipped list."""
    table = {}
    for ds, folder in (("ucf101", "ucf_splits"), ("hmdb51", "hmdb_splits")):
        for n in (1, 2, 3):
            table[f"{ds}/val{n}"] = (f"{folder}/val{n}.txt", ds)
        for k in (2, 4, 8, 16):
            table[f"{ds}/train1_few_shot_{k}"] = (f"{folder}/train1_few_shot_{k}.txt", ds)
    for n in (1, 2, 3):
        table[f"kinetics600/zero_shot_split{n}"] = (
            f"k600_splits/ZS_split{n}_K600_eval.txt",
            f"kinetics600_zero_shot_split{n}",
        )
    for ds, folder in (("kinetics400", "k400"), ("ucf101", "ucf"), ("hmdb51", "hmdb")):
        stems = ["base_val", "novel_val"] + [f"fs_base_s{s}_train" for s in (1, 2, 3)]
        if ds != "kinetics400":  # K400's full base training list is not shipped (too large)
            stems.append("base_train")
        for stem in stems:
            part = "novel" if stem.startswith("novel") else "base"
            table[f"{ds}/base2novel/{stem}"] = (
                f"base2novel_splits/{folder}_splits/{stem}.txt",
                f"{ds}_{part}",
            )
    return table


# Built-in list names (what configs hold) -> (file under assets/splits, label set its ids index).
BUILTIN_LISTS: dict[str, tuple[str, str]] = _builtin_lists()


def resolve_list(name_or_path: str | os.PathLike) -> str:
    """A built-in list name (`"ucf101/val1"`, see `BUILTIN_LISTS`) or path → a path.

    A shipped file's own relative path (`"ucf_splits/val1.txt"`) also resolves when no such file
    exists in the working directory. Anything else (paths, `gs://...`, `tfds:...`, "") is
    returned unchanged, so the function is idempotent and safe on every list field.
    """
    text = os.fspath(name_or_path)
    if text in BUILTIN_LISTS:
        return os.fspath(splits_dir() / BUILTIN_LISTS[text][0])
    shipped = {rel for rel, _ in BUILTIN_LISTS.values()}
    if text in shipped and not epath.Path(text).exists():
        return os.fspath(splits_dir() / text)
    return text


def list_label_set(name: str) -> str | None:
    """The built-in label set a built-in list's ids index (`"ucf101/val1"` → `"ucf101"`)."""
    entry = BUILTIN_LISTS.get(os.fspath(name))
    return entry[1] if entry else None


# ----------------------------------------------------------------- class names across data sets

# Kinetics-600 renamed 11 Kinetics-400 classes; without these a K400 class looks new in K600.
RENAMES_K400_TO_K600: dict[str, str] = {
    "dying hair": "dyeing hair",
    "tying tie": "tying necktie",
    "making bed": "making the bed",
    "changing wheel": "changing wheel (not on bike)",
    "hugging": "hugging (not baby)",
    "garbage collecting": "person collecting garbage",
    "opening bottle": "opening bottle (not wine)",
    "cooking sausages": "cooking sausages (not on barbeque)",
    "throwing ball": "throwing ball (not baseball or American football)",
    "baby waking up": "waking up",
    "balloon blowing": "inflating balloons",
}

_PUNCT = re.compile("[" + re.escape(string.punctuation) + r"\s]+")


def normalise_class_name(name: str) -> str:
    """Case and punctuation folded: `"Skiing (not slalom)"` → `"skiing not slalom"`.

    Punctuation and underscores become one space (so `brush_hair` matches `brush hair`).
    """
    return " ".join(_PUNCT.sub(" ", name.lower()).split())


def _index(names: Sequence[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n in names:
        key = normalise_class_name(n)
        if key in out:
            raise ValueError(f"{what}: {out[key]!r} and {n!r} are the same name after normalising")
        out[key] = n
    return out


def new_classes(
    old_labels: Sequence[str],
    new_labels: Sequence[str],
    renames: Mapping[str, str] | None = None,
) -> tuple[list[str], dict]:
    """The classes of `new_labels` that are not in `old_labels` (e.g. K600 minus K400).

    Names are matched after `normalise_class_name`; `renames` maps old names to their new
    spelling (`RENAMES_K400_TO_K600`). Nothing is dropped silently: the report lists every rename
    applied, every rename that did not apply, and every old class with no counterpart.

    Returns:
      `(new_names, report)`: the new classes in `new_labels` order, and a dict with
      `num_old`, `num_new_labels`, `num_new_classes`, `num_matched`, `renamed` (applied
      `[old, new]` pairs), `unused_renames` (pairs with a side missing, and why) and
      `old_not_in_new` (old classes absent from the new list, matched neither directly nor by a
      rename).
    """
    old = _index(old_labels, "old labels")
    new = _index(new_labels, "new labels")
    renamed, unused = [], []
    matched_new: set[str] = set(old) & set(new)
    matched_old: set[str] = set(matched_new)
    for o, n in (renames or {}).items():
        ko, kn = normalise_class_name(o), normalise_class_name(n)
        why = [s for s, ok in (("old name not in old labels", ko in old),
                               ("new name not in new labels", kn in new)) if not ok]  # fmt: skip
        if why:
            unused.append({"old": o, "new": n, "why": "; ".join(why)})
            continue
        renamed.append([old[ko], new[kn]])
        matched_new.add(kn)
        matched_old.add(ko)
    fresh = [name for key, name in new.items() if key not in matched_new]
    report = {
        "num_old": len(old),
        "num_new_labels": len(new),
        "num_new_classes": len(fresh),
        "num_matched": len(matched_new),
        "renamed": renamed,
        "unused_renames": unused,
        "old_not_in_new": [name for key, name in old.items() if key not in matched_old],
    }
    return fresh, report


def draw_class_splits(
    names: Sequence[str], num_splits: int = 3, classes_per_split: int = 160, seed: int = 0
) -> list[list[str]]:
    """`num_splits` random class sets of `classes_per_split` names, each in `names` order.

    Split i is drawn from a generator seeded with `(seed, i)`: deterministic and independent of
    `num_splits`.
    """
    if not 0 < classes_per_split <= len(names):
        raise ValueError(f"classes_per_split={classes_per_split} must be in [1, {len(names)}]")
    out = []
    for i in range(num_splits):
        pick = np.random.default_rng([seed, i]).choice(len(names), classes_per_split, replace=False)
        out.append([names[j] for j in np.sort(pick)])
    return out


# ---------------------------------------------------------------------------------- few-shot


def draw_few_shot_indices(
    labels: Sequence[int],
    k: int,
    seed: int = 0,
    num_classes: int | None = None,
    allow_fewer: bool = False,
) -> list[int]:
    """Indices of K videos per class, drawn without replacement.

    Class c's draw uses a generator seeded with `(seed, c)`, so it depends only on that class's
    videos: adding a class or reordering other classes' lines leaves it unchanged. The result is
    ordered by class, then by position in `labels`.

    Args:
      labels: class id of every video.
      k: videos per class.
      seed: the draw's seed.
      num_classes: when given, every class in `[0, num_classes)` must have videos.
      allow_fewer: take all videos of a class with fewer than k, instead of failing.
    Raises:
      ValueError: a class has fewer than k videos (and not `allow_fewer`), or has none.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    labels = np.asarray(labels, np.int64)
    classes = np.unique(labels)
    if num_classes is not None:
        missing = sorted(set(range(num_classes)) - set(classes.tolist()))
        if missing:
            raise ValueError(f"classes without any video: {missing[:20]} ({len(missing)} in all)")
    short = {int(c): int((labels == c).sum()) for c in classes if (labels == c).sum() < k}
    if short and not allow_fewer:
        raise ValueError(
            f"{len(short)} classes have fewer than k={k} videos (class: count): "
            f"{dict(list(short.items())[:20])}; pass allow_fewer to take all of theirs"
        )
    out: list[int] = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        take = min(k, len(idx))
        pick = np.random.default_rng([seed, int(c)]).choice(len(idx), take, replace=False)
        out.extend(int(i) for i in idx[np.sort(pick)])
    return out


def draw_few_shot(
    list_path: str | os.PathLike,
    k: int,
    seed: int = 0,
    num_classes: int | None = None,
    allow_fewer: bool = False,
) -> list[str]:
    """K lines per class of a list file (see `draw_few_shot_indices`), as written there.

    Args:
      list_path: a list file (`<path> <label>` or `<path> <num_frames> <label>`) or built-in
        list name.
      k, seed, num_classes, allow_fewer: as `draw_few_shot_indices`.
    Returns:
      The chosen lines verbatim (without newline), ordered by class then file order.
    """
    path = resolve_list(list_path)
    records, line_numbers = sources.parse_list_file(path, num_classes=num_classes)
    lines = epath.Path(path).read_text().splitlines()
    chosen = draw_few_shot_indices(
        [r["label"] for r in records], k, seed, num_classes=num_classes, allow_fewer=allow_fewer
    )
    return [lines[line_numbers[i] - 1].strip() for i in chosen]
