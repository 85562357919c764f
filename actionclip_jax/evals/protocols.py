"""Evaluation protocols as data: what a result depends on, statistics over splits and subsets.

Pure functions over numbers and the config; the evaluator (`evals.evaluator`) measures, this
module summarises:

- `result_metadata(config)`: protocol, seeds, views, class split, recipe, recorded with results;
- `half_class_masks(config, num_classes)`: the class subsets of half-class zero-shot, which the
  evaluator is given as data, and `half_class_summary` of its counts;
- `summarize_protocol(config, results_by_pass)`: one results dict (mean ± std over splits, the
  base/novel harmonic mean).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

PROTOCOLS = ("standard", "zero_shot", "few_shot", "base2novel")


def result_metadata(config, reads_text: bool = True) -> dict:
    """What a result depends on besides the weights: protocol, seeds, views, classes, recipe.

    `reads_text=False` (a model that scores without class texts) records the templates as
    "none" rather than templates it never used.
    """
    d, e = config.data, config.eval
    meta = {
        "protocol": e.protocol,
        "seed": int(config.seed),
        "num_clips": int(d.num_clips),
        "num_crops": int(d.num_crops),
        "views": int(d.num_clips * d.num_crops),
        "num_frames": int(d.num_frames),
        "templates_spec": str(config.text.templates) if reads_text else "none",
        "class_split": [str(x) for x in e.split_labels] or [str(d.labels)],
        "drop_last": bool(d.drop_last_eval),
        "objective": str(config.model.objective),
        "head": str(config.model.head),
        "frame_stage": str(config.model.frame_stage),
        "view_reduce": str(e.view_reduce),
        "eval_sampling": str(d.eval_sampling),
        "pixel_norm": str(d.pixel_norm),
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


def half_class_masks(config, num_classes: int) -> np.ndarray:
    """The bool `[S, C]` class masks of `config.eval.half_class_*` (S = 0 when off)."""
    s = config.eval.half_class_subsets
    if not s:
        return np.zeros((0, num_classes), bool)
    return subset_masks(
        half_class_subsets(num_classes, s, config.eval.half_class_seed), num_classes
    )


def half_class_summary(sums: Mapping) -> dict:
    """Per-subset accuracies and their mean ± std from the evaluator's `half_correct` and
    `half_count` sums."""
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


def summarize_protocol(config, results: Mapping[str, Mapping], reads_text: bool = True) -> dict:
    """One results dict over a protocol's passes.

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
    reads_text: see `result_metadata`.
    """
    meta = result_metadata(config, reads_text)
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
