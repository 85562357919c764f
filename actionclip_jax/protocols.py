"""Evaluation protocols: zero-shot (full and half-class), few-shot, base-to-novel, their splits.

Pure functions over names, label ids and scores; the only I/O is reading shipped list and label
files. The evaluator and the trainer call:

- `resolve_config_lists(config)`: built-in list names in `data.train/val/heldout` → paths;
- `eval_tasks(config)`: the (list, labels) pairs one evaluation runs, from `config.eval`;
- `check_objective(config, trained_names)` and `classifier_class_index`: what a 1-of-N
  classifier (`model.objective=classifier`) can be scored on, and with which of its outputs;
- `half_class_subset_masks` + `half_class_logit_sums` (inside the jitted eval step) and
  `half_class_summary` (after the device sums);
- `summarize_protocol(config, results_by_task)`: one results dict (mean ± std over splits, the
  base/novel harmonic mean) with the protocol, seeds, views and class split recorded.

The split lists of the standard protocols ship in `assets/splits/` (`BUILTIN_LISTS`); their label
files in `assets/labels/` (`data_pipeline.labels.BUILTIN_LABEL_FILES`).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import string
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from actionclip_jax.scoring import EVAL_SCALE
from data_pipeline import labels as label_files
from data_pipeline import sources

# ------------------------------------------------------------------------------- shipped lists

SPLITS_DIR = epath.Path(__file__).parent / "assets" / "splits"


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
        return os.fspath(SPLITS_DIR / BUILTIN_LISTS[text][0])
    shipped = {rel for rel, _ in BUILTIN_LISTS.values()}
    if text in shipped and not epath.Path(text).exists():
        return os.fspath(SPLITS_DIR / text)
    return text


def list_label_set(name: str) -> str | None:
    """The built-in label set a built-in list's ids index (`"ucf101/val1"` → `"ucf101"`)."""
    entry = BUILTIN_LISTS.get(os.fspath(name))
    return entry[1] if entry else None


def resolve_config_lists(config):
    """A copy of `config` with built-in list names in `data.train/val/heldout` made paths.

    Call it before `train.check_data_files`, which checks that those paths exist. `eval.splits`
    stays as written (`eval_tasks` resolves it and names results after it).
    """
    config = copy.deepcopy(config)
    with config.unlocked():
        for field in ("train", "val", "heldout"):
            value = config.data[field]
            if value:
                config.data[field] = resolve_list(value)
    return config


# ----------------------------------------------------------------------------- evaluation tasks

PROTOCOLS = ("standard", "zero_shot", "few_shot", "base2novel")


@dataclasses.dataclass(frozen=True)
class EvalTask:
    """One evaluation pass: a list file scored against one label set.

    Attributes:
      name: "" for the single default pass (results in `eval_results.json`), else the split's
        name (`val1`, `base`, `zero_shot_split2`; results in `eval_results_<name>.json`).
      data: the list file (a path) or TFDS spec.
      labels: the label file (a path or built-in label name for `read_labels`).
      class_names: the classes, `class_names[i]` = label id i.
    """

    name: str
    data: str
    labels: str
    class_names: tuple[str, ...]


def _split_name(spec: str) -> str:
    if spec in BUILTIN_LISTS:
        return spec.rsplit("/", 1)[-1]
    return epath.Path(spec).stem


def eval_tasks(config) -> list[EvalTask]:
    """The passes of one evaluation, from `config.eval.splits/split_labels/split_names`.

    With no `eval.splits`: one task, `data.val` against `data.labels`, named "". Otherwise one
    task per split, its labels from `split_labels` (one per split, or one for all) or else
    `data.labels`. Names must be unique: they name the result files.
    """
    e = config.eval
    if e.protocol not in PROTOCOLS:
        raise ValueError(f"eval.protocol must be one of {PROTOCOLS}, got {e.protocol!r}")
    if not e.splits:
        names = label_files.read_labels(config.data.labels)
        return [EvalTask("", resolve_list(config.data.val), config.data.labels, tuple(names))]
    splits = list(e.splits)
    labels = list(e.split_labels) or [config.data.labels]
    if len(labels) == 1:
        labels = labels * len(splits)
    if len(labels) != len(splits):
        raise ValueError(
            f"eval.split_labels has {len(labels)} entries for {len(splits)} eval.splits"
        )
    names = list(e.split_names) or [_split_name(s) for s in splits]
    if len(names) != len(splits) or len(set(names)) != len(names) or "" in names:
        raise ValueError(f"eval.split_names must be {len(splits)} unique, non-empty names: {names}")
    if e.protocol == "base2novel" and set(names) != {"base", "novel"}:
        raise ValueError(f"base2novel needs the splits named 'base' and 'novel', got {names}")
    tasks = []
    for name, spec, lab in zip(names, splits, labels):
        classes = tuple(label_files.read_labels(lab))
        tasks.append(EvalTask(name, resolve_list(spec), lab, classes))
    return tasks


# Protocols whose very point is scoring classes the model was not trained on.
_UNSEEN_CLASS_PROTOCOLS = {
    "zero_shot": "zero-shot scores classes the model never trained on",
    "base2novel": "base-to-novel scores the novel classes, which training never sees",
}


def classifier_class_index(
    class_names, trained_names, what: str = "evaluation"
) -> np.ndarray | None:
    """The classifier outputs that score `class_names`, in their order; None when identical.

    A pass may score a subset of the trained classes (its logits are those columns, so its
    softmax runs over its own classes only, as a half-class subset's). A class the classifier
    was not trained on has no output: that is an error.

    Args:
      class_names: the pass's classes (`class_names[i]` = label id i of its list).
      trained_names: the classes of the classifier's outputs (`data.labels`).
      what: names the pass in the error.
    """
    class_names, trained_names = tuple(class_names), tuple(trained_names)
    if class_names == trained_names:
        return None
    column = {n: i for i, n in enumerate(trained_names)}
    unseen = [n for n in class_names if n not in column]
    if unseen:
        raise ValueError(
            f"model.objective='classifier' cannot score {what}: {len(unseen)} of its "
            f"{len(class_names)} classes (e.g. {unseen[:3]}) are not among the "
            f"{len(trained_names)} classes the classifier was trained on (data.labels). A 1-of-N "
            "linear head has an output only for its training classes, so it cannot score unseen "
            "ones; evaluate this with model.objective='video_text' (ActionCLIP)."
        )
    return np.array([column[n] for n in class_names], np.int32)


def check_objective(config, trained_names) -> None:
    """Fails at once when the configured evaluation scores classes a classifier cannot.

    Nothing to check for `model.objective=video_text`: text scores any class. A classifier
    (`model.objective=classifier`) is refused the zero-shot and base-to-novel protocols and any
    pass (`eval.splits`/`split_labels`) with a class outside `trained_names`.
    """
    if config.model.objective != "classifier":
        return
    protocol = config.eval.protocol
    if protocol in _UNSEEN_CLASS_PROTOCOLS:
        raise ValueError(
            f"model.objective='classifier' cannot run eval.protocol={protocol!r}: "
            f"{_UNSEEN_CLASS_PROTOCOLS[protocol]}, and a 1-of-N linear head only has outputs for "
            f"the {len(trained_names)} classes it was trained on (data.labels). Use "
            "model.objective='video_text' (ActionCLIP) for this protocol."
        )
    for task in eval_tasks(config):
        what = f"eval split {task.name!r} (labels {task.labels})" if task.name else "data.val"
        classifier_class_index(task.class_names, trained_names, what)


def result_metadata(config) -> dict:
    """What a result depends on besides the weights: protocol, seeds, views, classes, recipe."""
    d, e = config.data, config.eval
    meta = {
        "protocol": e.protocol,
        "seed": int(config.seed),
        "num_clips": int(d.num_clips),
        "num_crops": int(d.num_crops),
        "views": int(d.num_clips * d.num_crops),
        "num_frames": int(d.num_frames),
        # A classifier reads no text: "none" rather than templates it never used.
        "templates_spec": (
            "none" if config.model.objective == "classifier" else str(config.text.templates)
        ),
        "class_split": [str(x) for x in e.split_labels] or [str(d.labels)],
        "drop_last": bool(d.drop_last_eval),
        "objective": str(config.model.objective),
        "head": str(config.model.head),
        "frame_stage": str(config.model.frame_stage),
        "freeze": str(config.optim.freeze),
        "init": str(config.init.checkpoint),
        "train_list": str(d.train),
    }
    if e.half_class_subsets:
        meta.update(
            half_class_subsets=int(e.half_class_subsets), half_class_seed=int(e.half_class_seed)
        )
    if e.shots:
        meta["shots"] = int(e.shots)
    return meta


# ------------------------------------------------------------------------------ statistics


def mean_std(values: Sequence[float], ddof: int = 0) -> tuple[float, float]:
    """Mean and standard deviation (population, `ddof=0`, by default) of a few numbers.

    The zero-shot literature reports "mean ± std" over 3 splits or 10 subsets without saying
    which deviation; the population one is numpy's default and is used throughout here.
    """
    v = np.asarray(list(values), np.float64)
    if v.size == 0:
        raise ValueError("mean_std of no values")
    std = float(v.std(ddof=ddof)) if v.size > ddof else 0.0
    return float(v.mean()), std


def harmonic_mean(base: float, novel: float) -> float:
    """`2·b·n / (b + n)`, the base-to-novel summary; 0 when both are 0."""
    return 0.0 if base + novel == 0 else 2.0 * base * novel / (base + novel)


# ------------------------------------------------------------------------------- half-class


def half_class_subsets(num_classes: int, num_subsets: int = 10, seed: int = 0) -> np.ndarray:
    """`num_subsets` random halves of the classes: int `[S, num_classes // 2]`, rows sorted.

    Subset i is drawn from a generator seeded with `(seed, i)`, so it does not depend on how many
    subsets are drawn, and the same arguments always give the same subsets.
    """
    if num_classes < 2:
        raise ValueError(f"half-class subsets need at least 2 classes, got {num_classes}")
    half = num_classes // 2
    rows = [
        np.sort(np.random.default_rng([seed, i]).choice(num_classes, half, replace=False))
        for i in range(num_subsets)
    ]
    return np.stack(rows).astype(np.int32) if rows else np.zeros((0, half), np.int32)


def subset_masks(subsets, num_classes: int) -> np.ndarray:
    """Class-index subsets `[S, n]` → boolean masks `[S, num_classes]`."""
    subsets = np.asarray(subsets)
    masks = np.zeros((len(subsets), num_classes), bool)
    for i, s in enumerate(subsets):
        masks[i, s] = True
    return masks


def half_class_subset_masks(config, num_classes: int) -> np.ndarray | None:
    """The boolean `[S, C]` masks of `config.eval.half_class_*`, or None when off."""
    s = config.eval.half_class_subsets
    if not s:
        return None
    return subset_masks(
        half_class_subsets(num_classes, s, config.eval.half_class_seed), num_classes
    )


def masked_class_probs(logits, class_mask):
    """Per-template softmax over the classes of `class_mask` only, then the template mean.

    Args:
      logits: `[..., K, C]` per-template logits (ActionCLIP's scale 100 × cosine similarity).
      class_mask: bool `[C]`; classes outside get probability 0.
    Returns:
      `[..., C]` probabilities. Renormalising each template's softmax over the subset is not the
      same as masking the full-class averaged probabilities: the template mean of subset
      softmaxes can rank classes differently, so the argmax can change.
    """
    masked = jnp.where(class_mask, logits, -jnp.inf)
    return jax.nn.softmax(masked, axis=-1).mean(axis=-2)


def subset_predictions(logits, class_mask):
    """Predicted class per video from `[N, K, C]` or `[N, V, K, C]` logits (views averaged)."""
    probs = masked_class_probs(jnp.asarray(logits, jnp.float32), jnp.asarray(class_mask))
    if probs.ndim == 3:  # [N, V, C]: views averaged after the per-template softmax
        probs = probs.mean(axis=1)
    return jnp.argmax(probs, axis=-1)


def subset_accuracy(logits, labels, subset) -> tuple[float, int]:
    """Top-1 accuracy over the videos of one class subset, softmax over the subset only.

    Args:
      logits: `[N, K, C]` or `[N, V, K, C]` per-template (per-view) logits over all C classes.
      labels: `[N]` class ids in `[0, C)`.
      subset: class ids of the subset (or a bool mask `[C]`).
    Returns:
      `(accuracy, number of videos whose class is in the subset)`; accuracy 0 for none.
    """
    c = np.shape(logits)[-1]
    subset = np.asarray(subset)
    mask = subset if subset.dtype == bool else subset_masks(subset[None], c)[0]
    labels = np.asarray(labels)
    inside = mask[labels]
    pred = np.asarray(subset_predictions(logits, mask))
    n = int(inside.sum())
    return (float((pred[inside] == labels[inside]).mean()) if n else 0.0), n


def half_class_sums(video_features, text_features, labels, valid, masks, scale=EVAL_SCALE):
    """Device-side half-class counts of one batch, for the jitted eval step.

    Args:
      video_features: `[B, V, E]` L2-normalised features of V views.
      text_features: `[K, C, E]` from `scoring.encode_class_texts`.
      labels: `[B]` int class ids.
      valid: `[B]` bool or 0/1: which rows count (padding and drop-last masked out).
      masks: bool `[S, C]` from `half_class_subset_masks` (a constant of the step).
      scale: the logit scale of ActionCLIP's evaluation.
    Returns:
      `{"half_correct": [S], "half_count": [S]}` float32 sums, to add over batches.
    """
    logits = scale * jnp.einsum("bve,kce->bvkc", video_features.astype(jnp.float32), text_features)
    return half_class_logit_sums(logits, labels, valid, masks)


def half_class_logit_sums(logits, labels, valid, masks):
    """`half_class_sums` from per-view, per-template logits `[B, V, K, C]`.

    A classifier's logits enter as one template (K = 1): the softmax over each subset's classes
    is then the softmax of its own logits restricted to the subset.
    """
    logits = jnp.asarray(logits, jnp.float32)
    valid = jnp.asarray(valid).astype(bool)

    def one(mask):  # sequential over subsets: one [B, V, K, C] buffer at a time
        pred = jnp.argmax(masked_class_probs(logits, mask).mean(axis=1), axis=-1)
        inside = mask[labels] & valid
        return jnp.stack([jnp.sum((pred == labels) & inside), jnp.sum(inside)]).astype(jnp.float32)

    out = jax.lax.map(one, jnp.asarray(masks))
    return {"half_correct": out[:, 0], "half_count": out[:, 1]}


def half_class_summary(sums: Mapping) -> dict:
    """Per-subset accuracies and their mean ± std from summed `half_class_sums` outputs."""
    correct = np.asarray(sums["half_correct"], np.float64)
    count = np.asarray(sums["half_count"], np.float64)
    acc = np.where(count > 0, correct / np.maximum(count, 1), 0.0)
    mean, std = mean_std(acc)
    return {
        "half_class_top1": mean,
        "half_class_top1_std": std,
        "half_class_top1_per_subset": [float(a) for a in acc],
        "half_class_videos_per_subset": [round(float(c)) for c in count],
    }


# ---------------------------------------------------------------------------- protocol summary

_METRICS = ("top1", "top5", "mean_class_acc")


def summarize_protocol(config, results: Mapping[str, Mapping]) -> dict:
    """One results dict over the tasks of `eval_tasks(config)`.

    Args:
      config: the run's config (`eval.protocol` and what `result_metadata` records).
      results: task name → that task's results (the evaluator's dict, with
        `half_class_summary` merged in when half-class is on).
    Returns:
      For one task named "": its results plus the metadata. Otherwise `splits` (each task's
      results), `top1`/`top5`/`mean_class_acc` as the mean over the splits with `*_std`,
      `num_videos` summed, `half_class_top1` ± std over every (split, subset) pair, and for
      base2novel `base_*`, `novel_*` and `hm_*` (harmonic mean) of each metric. Accuracies are
      fractions in [0, 1], as the evaluator writes them.
    """
    meta = result_metadata(config)
    if list(results) == [""]:
        return {**results[""], **meta}
    out: dict = {"splits": {k: dict(v) for k, v in results.items()}, **meta}
    for m in _METRICS:
        out[m], out[m + "_std"] = mean_std([r[m] for r in results.values()])
    out["num_videos"] = int(sum(r["num_videos"] for r in results.values()))
    out["num_splits"] = len(results)
    per_subset = [a for r in results.values() for a in r.get("half_class_top1_per_subset", ())]
    if per_subset:
        out["half_class_top1"], out["half_class_top1_std"] = mean_std(per_subset)
    if config.eval.protocol == "base2novel":
        base, novel = results["base"], results["novel"]
        for m in _METRICS:
            out[f"base_{m}"], out[f"novel_{m}"] = base[m], novel[m]
            out[f"hm_{m}"] = harmonic_mean(base[m], novel[m])
            out.pop(m + "_std")  # the mean of base and novel is not what base-to-novel reports
    return out


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
