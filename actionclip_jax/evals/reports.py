"""Reporting evaluation results: files and TensorBoard for each pass, and a table over runs.

`publish_pass` writes what one evaluator pass measured: `eval_results[_NAME].json`,
`per_class[_NAME].csv`, `confusion[_NAME].png` and `top_confusions[_NAME].md` in the workdir, and
its scalars, image and table in TensorBoard; `publish_summary` writes a protocol's summary over
its passes. `runs_table` is the table `python -m actionclip_jax.report` prints over workdirs.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from etils import epath

from actionclip_jax import logs

RESULTS_GLOB = "eval_results*.json"
SUMMARY_FILE = "eval_results.json"

# ------------------------------------------------------------------------------ per-class files


def write_per_class_csv(path, class_names, class_correct, class_count, confusion=None):
    """Writes `id,name,videos,correct,accuracy[,most_confused_with,confused_videos]`.

    Args:
      path: output file (local or gs://).
      class_names: `C` names.
      class_correct, class_count: `[C]` top-1 hits and videos per class (the evaluator's sums).
      confusion: optional `[C, C]` counts `[true, predicted]`; adds each class's most frequent
        wrong prediction.
    """
    correct = np.asarray(class_correct, np.float64)
    count = np.asarray(class_count, np.float64)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["id", "name", "videos", "correct", "accuracy"]
    off = None
    if confusion is not None:
        header += ["most_confused_with", "confused_videos"]
        off = np.asarray(confusion, np.float64).copy()
        np.fill_diagonal(off, 0)
    w.writerow(header)
    for i, name in enumerate(class_names):
        n = round(float(count[i]))
        row = [i, name, n, round(float(correct[i])), f"{correct[i] / n:.6f}" if n else ""]
        if off is not None:
            j = int(np.argmax(off[i]))
            row += [class_names[j], round(float(off[i, j]))] if off[i, j] > 0 else ["", 0]
        w.writerow(row)
    epath.Path(path).write_text(buf.getvalue())


def top_confusions(confusion, class_names, n: int = 20) -> list[dict]:
    """The `n` largest off-diagonal cells of a `[true, predicted]` confusion matrix.

    Returns:
      Dicts `{true, true_name, predicted, predicted_name, videos, share}` (share = fraction of
      the true class's videos), largest first; ties in (true, predicted) order. Empty cells are
      left out.
    """
    m = np.asarray(confusion, np.float64)
    off = m.copy()
    np.fill_diagonal(off, 0)
    flat = np.flatnonzero(off > 0)
    order = flat[np.lexsort((flat, -off.ravel()[flat]))][:n]  # by count desc, then index
    rows_total = m.sum(axis=1)
    out = []
    for idx in order:
        t, p = divmod(int(idx), m.shape[1])
        out.append(
            {
                "true": t,
                "true_name": class_names[t],
                "predicted": p,
                "predicted_name": class_names[p],
                "videos": round(float(off[t, p])),
                "share": float(off[t, p] / rows_total[t]) if rows_total[t] else 0.0,
            }
        )
    return out


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table; `|` in cells is escaped."""

    def cell(x):
        return str(x).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def confusions_markdown(confusions: Sequence[Mapping]) -> str:
    """`top_confusions` as a markdown table."""
    rows = [
        (c["true_name"], c["predicted_name"], c["videos"], f"{100 * c['share']:.1f}%")
        for c in confusions
    ]
    return markdown_table(("true class", "predicted as", "videos", "of the class"), rows)


def confusion_png(
    path,
    confusion,
    class_names,
    *,
    max_classes: int | None = None,
    max_tick_labels: int = 64,
    title: str = "",
) -> np.ndarray:
    """Draws a row-normalised confusion matrix; writes a PNG (if `path`) and returns its pixels.

    Args:
      path: PNG file (local or gs://), or None to only return the image.
      confusion: `[C, C]` counts `[true, predicted]`.
      class_names: `C` names.
      max_classes: show only this many classes, those with the most confused videos (as true
        or predicted), so that a 400-class matrix can be read at the interesting places.
      max_tick_labels: above this many shown classes the axes carry no class names (they would
        overlap); the per-class CSV and the top-confusions table name them.
      title: the figure's title.
    Returns:
      The image as uint8 `[H, W, 3]`, for `MetricWriter.write_image`.
    """
    # Agg through the object API: no pyplot state, no display needed, safe in threads. Imported
    # here so that the table command does not need matplotlib.
    # pylint: disable=import-outside-toplevel
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    m = np.asarray(confusion, np.float64)
    names = list(class_names)
    shown = f"{m.shape[0]} classes"
    if max_classes is not None and m.shape[0] > max_classes:
        shown = f"the {max_classes} most confused of {m.shape[0]} classes"
        off = m.copy()
        np.fill_diagonal(off, 0)
        keep = np.sort(np.argsort(-(off.sum(0) + off.sum(1)), kind="stable")[:max_classes])
        m, names = m[np.ix_(keep, keep)], [names[i] for i in keep]
    c = m.shape[0]
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    labelled = c <= max_tick_labels
    side = 6.0 if not labelled else min(max(6.0, 0.22 * c + 2.5), 16.0)
    fig = Figure(figsize=(side + 1.2, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(norm, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if labelled:
        size = max(4, min(9, int(320 / max(c, 1))))
        ax.set_xticks(range(c), names, rotation=90, fontsize=size)
        ax.set_yticks(range(c), names, fontsize=size)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(f"{title or 'confusion'} ({shown}, rows normalised)", fontsize=10)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    if path is not None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        epath.Path(path).write_bytes(buf.getvalue())
    return image


def write_eval_artifacts(
    workdir,
    class_names,
    sums: Mapping,
    *,
    name: str = "",
    writer=None,
    step: int = 0,
    top_n: int = 20,
    max_classes_png: int | None = None,
) -> dict:
    """Per-class CSV, confusion PNG and top-confusions table of one evaluation pass.

    Call on process 0 only (the files are written unconditionally).

    Args:
      workdir: the run's folder.
      class_names: the pass's classes.
      sums: the evaluator's summed device outputs (`class_correct`, `class_count`, `confusion`).
      name: the pass's name ("" for the default pass); suffixes the files and the tags.
      writer: a `logs.MetricWriter` for the image and the table in TensorBoard, or None.
      step: the checkpoint step.
      top_n: rows of the top-confusions table.
      max_classes_png: see `confusion_png`'s `max_classes`.
    Returns:
      `{"per_class_csv", "confusion_png", "top_confusions_md"}`: the written paths.
    """
    wd = epath.Path(workdir)
    suffix = f"_{name}" if name else ""
    paths = {
        "per_class_csv": wd / f"per_class{suffix}.csv",
        "confusion_png": wd / f"confusion{suffix}.png",
        "top_confusions_md": wd / f"top_confusions{suffix}.md",
    }
    confusion = np.asarray(sums["confusion"])
    write_per_class_csv(
        paths["per_class_csv"], class_names, sums["class_correct"], sums["class_count"], confusion
    )
    title = f"{name or 'eval'} at step {step}"
    image = confusion_png(
        paths["confusion_png"], confusion, class_names, max_classes=max_classes_png, title=title
    )
    table = confusions_markdown(top_confusions(confusion, class_names, top_n))
    paths["top_confusions_md"].write_text(table)
    if writer is not None:
        prefix = f"eval/{name}/" if name else "eval/"
        writer.write_image(step, prefix + "confusion", image)
        writer.write_text(step, prefix + "top_confusions", table)
    return {k: str(v) for k, v in paths.items()}


# ---------------------------------------------------------------------------- the runs table

# (row label, key in a results file, kind): pct = fraction shown in %, with `<key>_std` if there.
ROWS = (
    ("protocol", "protocol", "text"),
    ("data", "dataset", "text"),
    ("class split", "class_split", "text"),
    ("classes", "num_classes", "text"),
    ("views (clips×crops)", None, "views"),
    ("frames", "num_frames", "text"),
    ("templates", "templates_spec", "text"),
    ("objective", "objective", "text"),
    ("head", "head", "text"),
    ("frame stage", "frame_stage", "text"),
    ("frozen", "freeze", "text"),
    ("init", "init", "text"),
    ("shots", "shots", "text"),
    ("seed", "seed", "text"),
    ("half-class subsets / seed", None, "half"),
    ("drop last batch", "drop_last", "text"),
    ("step", "checkpoint_step", "text"),
    ("videos", "num_videos", "text"),
    ("top-1 %", "top1", "pct"),
    ("top-5 %", "top5", "pct"),
    ("mean class %", "mean_class_acc", "pct"),
    ("half-class top-1 %", "half_class_top1", "pct"),
    ("base top-1 %", "base_top1", "pct"),
    ("novel top-1 %", "novel_top1", "pct"),
    ("HM top-1 %", "hm_top1", "pct"),
)


def load_runs(workdirs: Sequence[str], files: str = "all") -> list[tuple[str, dict]]:
    """`(column label, results)` for each results file of each workdir, in the given order.

    The label is the workdir's folder name, plus `:<name>` for `eval_results_<name>.json`.
    """
    runs = []
    for wd in workdirs:
        path = epath.Path(wd)
        found = sorted(path.glob(RESULTS_GLOB), key=lambda p: (p.name != SUMMARY_FILE, p.name))
        if not found:
            raise FileNotFoundError(f"{wd}: no {RESULTS_GLOB}")
        if files == "summary" and any(p.name == SUMMARY_FILE for p in found):
            found = [p for p in found if p.name == SUMMARY_FILE]
        base = path.name or str(wd)
        for p in found:
            m = re.fullmatch(r"eval_results_(.+)\.json", p.name)
            runs.append((f"{base}:{m.group(1)}" if m else base, json.loads(p.read_text())))
    return runs


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _pct(results: Mapping, key: str) -> str:
    v = results.get(key)
    if v is None:
        return ""
    s = results.get(key + "_std")
    return f"{100 * v:.2f}" + (f" ± {100 * s:.2f}" if s is not None else "")


def _cell(results: Mapping, key, kind) -> str:
    if kind == "views":
        if "num_clips" not in results:
            return ""
        return f"{results['num_clips']}×{results['num_crops']}"
    if kind == "half":
        if "half_class_subsets" not in results:
            return ""
        return f"{results['half_class_subsets']} / {results.get('half_class_seed', '')}"
    if kind == "pct":
        return _pct(results, key)
    return _text(results[key]) if key in results and results[key] not in ("", None) else ""


def runs_table(runs: Sequence[tuple[str, Mapping]], mean: bool = False):
    """`(header, rows)` of the side-by-side table; rows empty in every column are left out.

    Per-split top-1 rows (`top-1 % [val1]`, ...) follow the summary rows.
    """
    header = ["", *(label for label, _ in runs)]
    rows, numeric = [], []
    for label, key, kind in ROWS:
        cells = [_cell(r, key, kind) for _, r in runs]
        if any(cells):
            rows.append([label, *cells])
            numeric.append(kind == "pct")
    split_names: list[str] = []
    for _, r in runs:
        for s in r.get("splits", {}):
            if s not in split_names:
                split_names.append(s)
    for s in split_names:
        cells = [_pct(r.get("splits", {}).get(s, {}), "top1") for _, r in runs]
        rows.append([f"top-1 % [{s}]", *cells])
        numeric.append(True)
    if mean:
        header.append("mean ± std")
        for row, is_pct in zip(rows, numeric):
            row.append(_mean_cell(row[1:]) if is_pct else "")
    return header, rows


def _mean_cell(cells: Sequence[str]) -> str:
    """Mean ± std (population) over the columns' main values of a % row (all must be set)."""
    values = []
    for c in cells:
        if not c:
            return ""
        values.append(float(c.split(" ± ")[0]))
    if len(values) < 2:
        return ""
    v = np.asarray(values)
    return f"{v.mean():.2f} ± {v.std():.2f}"


def format_table(header: Sequence[str], rows: Sequence[Sequence], fmt: str = "text") -> str:
    """The table as aligned text, markdown or CSV."""
    if fmt == "markdown":
        return markdown_table(header, rows)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue()
    table = [list(header), *map(list, rows)]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ publishing


def results_file(name: str) -> str:
    return f"eval_results_{name}.json" if name else SUMMARY_FILE


def publish_pass(
    results: Mapping, counts: Mapping, *, name: str, class_names, step: int, writer, workdir,
    artifacts: bool = True, top_n: int = 20,
) -> None:  # fmt: skip
    """Writes one pass's results (JSON, per-class files, TensorBoard) on process 0.

    Scalars go to `eval/<name>/top1` ... (`eval/top1` for the default pass).
    """
    prefix = f"eval/{name}/" if name else "eval/"
    if writer is not None:
        writer.write_scalars(
            step, {prefix + k: results[k] for k in ("top1", "top5", "mean_class_acc")}
        )
    if workdir is None or jax.process_index() != 0:
        return
    if artifacts:
        write_eval_artifacts(
            workdir, class_names, counts, name=name, writer=writer, step=step, top_n=top_n
        )
    logs.write_json(epath.Path(workdir) / results_file(name), dict(results))


def publish_summary(summary: Mapping, workdir) -> None:
    """Writes a protocol's summary over its passes to `eval_results.json` (process 0)."""
    if workdir is not None and jax.process_index() == 0:
        logs.write_json(epath.Path(workdir) / SUMMARY_FILE, dict(summary))
