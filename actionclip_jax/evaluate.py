"""Evaluation: every video counted exactly once, views and templates averaged as the original.

Each video's V = num_clips × num_crops views are encoded; each view gets a softmax over classes
per template (scale 100), averaged over templates and then views (`scoring.view_probs`). The last
partial batch is padded and masked, so all videos count (the original drops it; set
`data.drop_last_eval` to reproduce that). Sums are reduced on the device, so every host sees the
same global totals.

A classifier (`model.objective=classifier`) encodes no text: each view's class probabilities are
the softmax of its logits, averaged over views; the rest (top-1/top-5, per-class counts,
confusions, half-class subsets) is the same machinery. It can only score the classes it was
trained on (`protocols.check_objective`).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from actionclip_jax import augment, logs, prompts, protocols, report, scoring, sharding
from actionclip_jax.models.clip import l2_normalize
from data_pipeline import labels as label_files
from data_pipeline import pipeline, sources

RESULTS_FILE = "eval_results.json"


def eval_step(
    params, batch, text_features, *, model, limit: int, half_masks=None, class_index=None
):
    """Device-side sums over one global batch: hits, counts, per-class counts, confusions.

    `text_features` `[K, C, E]` for video_text, None for a classifier; `class_index` (classifier
    only) picks and orders the outputs that score the pass's classes (None: all, as trained).
    """
    video = augment.preprocess_uint8(batch["video"]).astype(model.dtype)  # [B, V, T, S, S, 3]
    b, v = video.shape[:2]
    video = video.reshape(b * v, *video.shape[2:])
    if model.objective == "classifier":
        logits, _ = model.apply({"params": params}, video)  # [B·V, C]
        logits = logits.astype(jnp.float32).reshape(b, v, 1, -1)  # one "template"
        if class_index is not None:
            logits = logits[..., jnp.asarray(class_index)]
    else:
        feats = model.apply({"params": params}, video, method=model.encode_video)
        feats = l2_normalize(feats.astype(jnp.float32)).reshape(b, v, -1)
        logits = scoring.template_logits(feats, text_features)  # [B, V, K, C]
    probs = scoring.probs_from_logits(logits).mean(axis=1)  # [B, C]: views averaged
    num_classes = logits.shape[-1]
    _, top = jax.lax.top_k(probs, min(5, num_classes))
    label = batch["label"]
    mask = (batch["mask"] & (batch["index"] < limit)).astype(jnp.float32)
    hit1 = (top[:, 0] == label).astype(jnp.float32)
    hit5 = jnp.any(top == label[:, None], axis=-1).astype(jnp.float32)
    truth = jax.nn.one_hot(label, num_classes) * mask[:, None]  # [B, C]
    out = {
        "correct1": jnp.sum(hit1 * mask),
        "correct5": jnp.sum(hit5 * mask),
        "count": jnp.sum(mask),
        "class_correct": truth.T @ hit1,
        "class_count": truth.sum(0),
        "confusion": truth.T @ jax.nn.one_hot(top[:, 0], num_classes),  # [true, predicted]
        "bad": jnp.sum(batch["bad"]),
    }
    if half_masks is not None:  # half-class protocol: softmax over each class subset
        out.update(protocols.half_class_logit_sums(logits, label, mask > 0, half_masks))
    return out


def summarize(sums: dict) -> dict:
    """Accuracies (fractions in [0, 1]) from summed counts."""
    count = float(sums["count"])
    seen = sums["class_count"] > 0
    per_class = np.where(seen, sums["class_correct"] / np.maximum(sums["class_count"], 1), 0.0)
    return {
        "top1": float(sums["correct1"]) / max(count, 1.0),
        "top5": float(sums["correct5"]) / max(count, 1.0),
        "mean_class_acc": float(per_class[seen].mean()) if seen.any() else 0.0,
        "num_videos": int(round(count)),
        "bad_videos": int(sums["bad"]),
    }


class Evaluator:
    """Evaluates parameters on `config.data.val`; text features are encoded once per call."""

    def __init__(self, config, model, mesh, class_names, data=None, name=None):
        """`data` defaults to `config.data.val`; another list (a protocol's split, the demo's
        held-out combinations) reports under `name` (default: its file name):
        `eval/<name>/top1` and `eval_results_<name>.json`."""
        self.config, self.model, self.mesh, self.names = config, model, mesh, class_names
        d = config.data
        self.data = data or d.val
        if name is None:
            name = "" if data is None else epath.Path(data).stem
        self.name = name
        self.source = sources.open_source(
            self.data,
            split=d.val_split,
            root=d.root or None,
            labels=len(class_names),
            kind=d.kind or None,
            tfds_data_dir=d.tfds_data_dir or None,
        )
        class_index, self.table = None, None
        if model.objective == "classifier":  # no text; outputs = the data.labels classes
            trained = label_files.read_labels(label_files.resolve_label_file(d.labels))
            if len(trained) != model.num_classes:
                raise ValueError(
                    f"data.labels has {len(trained)} classes, the classifier {model.num_classes}"
                )
            what = f"{self.data} ({len(class_names)} classes)"
            class_index = protocols.classifier_class_index(class_names, trained, what)
        else:
            self.table = prompts.prompt_tokens(
                class_names,
                prompts.resolve_templates(config.text.templates),
                model.clip_sizes["context_length"],
            )
        gb = d.eval_batch_size
        if gb % jax.device_count():
            raise ValueError(f"data.eval_batch_size={gb} must be a multiple of the devices")
        self.local_batch = gb // jax.process_count()
        n = len(self.source)
        limit = (n // gb) * gb if d.drop_last_eval else n
        self.limit = limit
        half_masks = protocols.half_class_subset_masks(config, len(class_names))
        self.step_fn = jax.jit(
            functools.partial(
                eval_step,
                model=model,
                limit=limit,
                half_masks=half_masks,
                class_index=class_index,
            ),
            out_shardings=sharding.replicated(mesh),
        )

    def __call__(self, params, step: int, writer=None, workdir=None) -> dict:
        d = self.config.data
        text = None  # a classifier scores without text
        if self.table is not None:
            text = scoring.encode_class_texts(self.model, params, self.table)
        it = pipeline.make_eval_iterator(
            self.source,
            batch_size=self.local_batch,
            num_frames=d.num_frames,
            num_clips=d.num_clips,
            num_crops=d.num_crops,
            input_size=self.model.clip_sizes["image_resolution"],
            worker_count=d.workers,
            read_threads=d.read_threads,
            strict=d.strict,
            video_backend=d.video_backend,
            decode_timeout_s=d.decode_timeout_s,
        )
        total = None
        try:
            for batch in it:
                out = self.step_fn(params, pipeline.to_global(batch, self.mesh), text)
                total = out if total is None else jax.tree.map(jnp.add, total, out)
        finally:
            it.close()  # stops its worker and decoder processes at once
        sums = jax.device_get(total)
        results = summarize(sums)
        results.update(
            checkpoint_step=int(step),
            views=d.num_clips * d.num_crops,
            num_clips=d.num_clips,
            num_crops=d.num_crops,
            num_classes=len(self.names),
            templates=0 if self.table is None else len(self.table),
            dataset=str(self.data),
            drop_last=bool(d.drop_last_eval),
        )
        if "half_correct" in sums:
            results.update(protocols.half_class_summary(sums))
        results.update(protocols.result_metadata(self.config))
        self.last_confusion = sums["confusion"]
        self.last_class_counts = (sums["class_correct"], sums["class_count"])
        if workdir is not None and self.config.eval.artifacts and jax.process_index() == 0:
            report.write_eval_artifacts(
                workdir,
                self.names,
                sums,
                name=self.name,
                writer=writer,
                step=step,
                top_n=self.config.eval.top_confusions,
            )
        prefix = f"eval/{self.name}/" if self.name else "eval/"
        if writer is not None:
            writer.write_scalars(
                step, {prefix + k: results[k] for k in ("top1", "top5", "mean_class_acc")}
            )
        if workdir is not None and jax.process_index() == 0:
            name = f"eval_results_{self.name}.json" if self.name else RESULTS_FILE
            logs.write_json(epath.Path(workdir) / name, results)
        return results


def run(config, workdir) -> dict:
    """`mode=eval`: one evaluation of `init.checkpoint`, or of the workdir's latest checkpoint."""
    from actionclip_jax import checkpointing, train  # pylint: disable=import-outside-toplevel

    config = train.resolve_data(config)  # the demo's synthetic data, as in training
    config = protocols.resolve_config_lists(config)  # built-in list names → shipped files
    train.check_data_files(config)
    protocols.check_objective(config, train.class_names(config))
    mesh = sharding.make_mesh()
    ckpt = checkpointing.Checkpointer(workdir, config)
    step = ckpt.latest_step()
    if step is None and not config.init.checkpoint:
        raise FileNotFoundError(
            f"nothing to evaluate: {workdir} has no checkpoint and config.init.checkpoint is empty"
        )
    if step is None and config.model.objective == "classifier":
        ckpt.close()
        raise ValueError(
            f"nothing to evaluate: {workdir} has no checkpoint, and with "
            "model.objective='classifier' init.checkpoint only supplies the video encoder (its "
            "linear layer would be random); evaluate the workdir of a trained classifier run"
        )
    model, _, _, state, shardings = train.create_train_state(config, mesh, steps_per_epoch=1)
    if step is not None:  # a run's own checkpoint wins over the initial weights
        abstract = jax.tree.map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, shardings
        )
        state = ckpt.restore_state(step, abstract)
    ckpt.close()
    writer = logs.MetricWriter(workdir)
    try:
        results = evaluate_tasks(config, model, mesh, state.params, int(step or 0), writer, workdir)
    finally:
        writer.close()
    return results


def evaluate_tasks(config, model, mesh, params, step: int, writer=None, workdir=None) -> dict:
    """Every pass of the configured protocol (`protocols.eval_tasks`), summarised in one dict
    (mean ± std over splits, half-class, base/novel/HM) written to `eval_results.json`."""
    per = {}
    for task in protocols.eval_tasks(config):
        evaluator = Evaluator(
            config, model, mesh, list(task.class_names), data=task.data if task.name else None,
            name=task.name,
        )  # fmt: skip
        per[task.name] = evaluator(params, step, writer, workdir)
    summary = protocols.summarize_protocol(config, per)
    if workdir is not None and jax.process_index() == 0:
        logs.write_json(epath.Path(workdir) / RESULTS_FILE, summary)
    return summary
