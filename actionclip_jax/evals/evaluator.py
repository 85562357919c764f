"""Evaluators: one pass over a task's videos with a prediction function, yielding metrics.

Each video's V = num_clips × num_crops views are predicted (`Objective.predict_fn`: per-template
logits), reduced to one score per class (`scoring.view_scores`, the protocol's reduction) and
counted on the device with `clu.metrics`: top-1/top-5, per-class counts, the confusion matrix,
half-class subsets. The last partial batch is padded and masked, so every video counts once (the
original drops it; `data.drop_last_eval` reproduces that through the task's `limit`). Counts are
reduced over the global batch inside the jitted step, so every host sees the same totals.

The step is jitted once per run (`make_eval_step`) and shared by every evaluator of the run: it
compiles once per input shape. Writing files is a separate step (`evals.reports`).
"""


import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
from clu import metrics as clu_metrics

from actionclip_jax import augment, scoring, sharding
from data_pipeline import pipeline


@flax.struct.dataclass
class ClassCounts(clu_metrics.Metric):
    """Per-class hits and videos, and the confusion matrix `[true, predicted]`."""

    correct: jnp.ndarray  # [C]
    count: jnp.ndarray  # [C]
    confusion: jnp.ndarray  # [C, C]

    @classmethod
    def from_model_output(cls, *, label, pred, mask, scores, **_):
        num_classes = scores.shape[-1]
        truth = jax.nn.one_hot(label, num_classes) * mask[:, None]  # [B, C]
        predicted = jax.nn.one_hot(pred, num_classes)
        return cls(
            correct=jnp.sum(truth * predicted, axis=0),
            count=jnp.sum(truth, axis=0),
            confusion=truth.T @ predicted,
        )

    def merge(self, other):
        return jax.tree.map(jnp.add, self, other)

    def compute(self):
        """Mean per-class accuracy over the classes that have videos."""
        seen = self.count > 0
        acc = jnp.where(seen, self.correct / jnp.maximum(self.count, 1), 0.0)
        return jnp.sum(acc) / jnp.maximum(jnp.sum(seen), 1)


@flax.struct.dataclass
class HalfClass(clu_metrics.Metric):
    """Hits and videos of each half-class subset (a softmax over the subset's classes only)."""

    correct: jnp.ndarray  # [S]
    count: jnp.ndarray  # [S]

    @classmethod
    def from_model_output(cls, *, half_hits, half_inside, **_):
        return cls(correct=jnp.sum(half_hits, axis=1), count=jnp.sum(half_inside, axis=1))

    def merge(self, other):
        return jax.tree.map(jnp.add, self, other)

    def compute(self):
        return self.correct / jnp.maximum(self.count, 1)


@flax.struct.dataclass
class Total(clu_metrics.Metric):
    """A plain sum over the batch (e.g. unreadable videos, which no mask hides)."""

    total: jnp.ndarray

    @classmethod
    def from_model_output(cls, *, bad, **_):
        return cls(total=jnp.sum(bad))

    def merge(self, other):
        return type(self)(total=self.total + other.total)

    def compute(self):
        return self.total


@flax.struct.dataclass
class EvalMetrics(clu_metrics.Collection):
    top1: clu_metrics.Average.from_output("hit1")
    top5: clu_metrics.Average.from_output("hit5")
    classes: ClassCounts
    half: HalfClass
    bad: Total


def eval_step(
    params, batch, classes, half_masks, limit, *, predict_fn, reduce, dtype, pixel_norm="clip"
):
    """`EvalMetrics` of one global batch.

    Args:
      params: the model's parameters.
      batch: `video` uint8 `[B, V, T, S, S, 3]`, `label`, `index`, `mask`, `bad`.
      classes: what `predict_fn` scores against (from `Objective.classes_fn`).
      half_masks: bool `[S, C]` half-class subsets (S may be 0).
      limit: rows whose dataset index is at or past it do not count (`drop_last_eval`).
      predict_fn, reduce, dtype, pixel_norm: the objective's prediction, the view reduction
        (`scoring.VIEW_REDUCTIONS`), the compute dtype, the pixel normalisation (static).
    """
    video = augment.preprocess_uint8(batch["video"], pixel_norm).astype(dtype)  # [B, V, T, S, S, 3]
    b, v = video.shape[:2]
    logits = predict_fn(params, video.reshape(b * v, *video.shape[2:]), classes)  # [B·V, K, C]
    logits = logits.astype(jnp.float32).reshape(b, v, *logits.shape[1:])  # [B, V, K, C]
    scores = scoring.view_scores(logits, reduce)  # [B, C]
    _, top = jax.lax.top_k(scores, min(5, scores.shape[-1]))
    label = batch["label"]
    mask = batch["mask"] & (batch["index"] < limit)

    def half(class_mask):  # sequential over subsets: one [B, V, K, C] buffer at a time
        pred = jnp.argmax(scoring.view_scores(logits, reduce, class_mask), axis=-1)
        inside = class_mask[label] & mask
        return jnp.stack([(pred == label) & inside, inside])  # [2, B]

    halves = jax.lax.map(half, half_masks) if half_masks.shape[0] else jnp.zeros((0, 2, b), bool)
    return EvalMetrics.single_from_model_output(
        hit1=(top[:, 0] == label).astype(jnp.float32),
        hit5=jnp.any(top == label[:, None], axis=-1).astype(jnp.float32),
        mask=mask,
        label=label,
        pred=top[:, 0],
        scores=scores,
        half_hits=halves[:, 0].astype(jnp.float32),
        half_inside=halves[:, 1].astype(jnp.float32),
        bad=batch["bad"],
    )


def make_eval_step(
    objective, dtype, mesh, reduce: str = "softmax_mean", pixel_norm: str = "clip"
):
    """The run's jitted `eval_step` for `objective` (one per run: compiles once per shape)."""
    return jax.jit(
        functools.partial(
            eval_step,
            predict_fn=objective.predict_fn,
            reduce=reduce,
            dtype=dtype,
            pixel_norm=pixel_norm,
        ),
        out_shardings=sharding.replicated(mesh),
    )


class Evaluator:
    """One evaluation pass: a task's data through the run's eval step.

    Args:
      task: a `plan.EvalTask` (data source, classes, half-class masks, counted videos).
      step: from `make_eval_step`.
      objective: the run's objective (its `classes_fn`, `num_templates`).
      data_cfg: the config's `data` section (views, frames, batch, workers).
      input_size: the model's image side.
      mesh: the device mesh.
    """

    def __init__(self, task, step, objective, data_cfg, input_size: int, mesh):
        self.task, self.step, self.objective = task, step, objective
        self.data_cfg, self.input_size, self.mesh = data_cfg, input_size, mesh
        self.local_batch = data_cfg.eval_batch_size // jax.process_count()

    @property
    def name(self) -> str:
        return self.task.name

    def run(self, params) -> tuple[dict, dict]:
        """`(results, counts)`: accuracies (fractions) and the numpy per-class counts, confusion
        matrix and half-class counts behind them."""
        d, task = self.data_cfg, self.task
        classes = self.objective.classes_fn(params, task.class_info)
        it = pipeline.make_eval_iterator(
            task.source,
            batch_size=self.local_batch,
            num_frames=d.num_frames,
            num_clips=d.num_clips,
            num_crops=d.num_crops,
            input_size=self.input_size,
            scale_size=d.eval_scale_size or None,
            sampling=d.eval_sampling,
            stride=d.eval_stride,
            worker_count=d.workers,
            read_threads=d.read_threads,
            strict=d.strict,
            video_backend=d.video_backend,
            decode_timeout_s=d.decode_timeout_s,
        )
        batches = pipeline.WatchedIterator(it, f"evaluation list {task.data}")
        total = None
        try:
            for batch in batches:
                batch = pipeline.to_global(batch, self.mesh)
                out = self.step(params, batch, classes, task.half_masks, task.limit)
                total = out if total is None else total.merge(out)
        finally:
            batches.close()  # stops its worker and decoder processes at once
        total = jax.device_get(total)
        values = total.compute()
        counts = {
            "class_correct": np.asarray(total.classes.correct),
            "class_count": np.asarray(total.classes.count),
            "confusion": np.asarray(total.classes.confusion),
            "half_correct": np.asarray(total.half.correct),
            "half_count": np.asarray(total.half.count),
        }
        count = int(round(float(total.top1.count)))
        results = {
            "top1": float(values["top1"]) if count else 0.0,
            "top5": float(values["top5"]) if count else 0.0,
            "mean_class_acc": float(values["classes"]),
            "num_videos": count,
            "bad_videos": int(values["bad"]),
            "num_clips": int(d.num_clips),
            "num_crops": int(d.num_crops),
            "views": int(d.num_clips * d.num_crops),
            "num_classes": len(task.class_names),
            "templates": int(self.objective.num_templates),
            "dataset": str(task.data),
            "drop_last": bool(d.drop_last_eval),
        }
        return results, counts
