"""The run plan: a config turned, once and checked, into everything a run needs.

`make_plan(config, workdir)` is the one place where a config is read. In order, cheapest first:

1. the config's values are checked (a bad value is a `ConfigError` naming the field);
2. the data are resolved: the demo's synthetic set is generated (once, cached), built-in list names
   become the shipped files, and every list, label file and `init.checkpoint` that the run will
   read is checked to exist;
3. class names are read, the objective is picked by name (`actionclip_jax.objectives`), data
   sources are opened and prompt tables built, once per list;
4. the model is built, once, from the spec of the run's own checkpoint when the workdir has one
   (resuming: `init.checkpoint` is then not read for the model), else from `init.checkpoint`'s
   sizes (its weights kept in `pretrained`), else from `model.clip`;
5. θ₀, the original CLIP weights, are loaded (`reference`) when a training objective reads them
   (Open-VCLIP's weight interpolation, FROSTER's teacher) or the evaluated weights are
   interpolated with them (`weight_space.interpolate`): from `init.clip`, else
   `init.checkpoint` (its copy of the original CLIP where it carries one), also when resuming.

The training loop (`train.py`) and evaluation-only runs (`evaluate.py`) consume the plan; neither
reads the config's data or model sections themselves.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from etils import epath

from actionclip_jax import (
    augment,
    checkpointing,
    descriptions,
    objectives,
    prompts,
    scoring,
    weights,
)
from actionclip_jax.evals import protocols
from actionclip_jax.models import actionclip
from actionclip_jax.models.clip import ATTENTION_IMPLS, FRAME_STAGES, REMAT_POLICIES
from actionclip_jax.models.heads import HEADS
from actionclip_jax.objectives import froster
from data_pipeline import labels as label_files
from data_pipeline import sources, splits

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
MODES = ("train", "eval")

# The spec's visual-prompt fields and the config fields they come from.
_VIDEO_FIELDS = {
    "num_frames": "data.num_frames",
    "frame_stage": "model.frame_stage",
    "head": "model.head",
    "position_rows": "model.position_rows",
    "conv1d_original": "model.conv1d_original",
    "head_layers": "model.head_layers",
    "pixel_norm": "data.pixel_norm",
}
EVAL_SAMPLINGS = ("segments", "window")


class ConfigError(ValueError):
    """A config value that cannot work; the message names the field and what to do."""


@dataclasses.dataclass(frozen=True)
class EvalTask:
    """One evaluation pass: a list scored against one class list, with its protocol's data.

    Attributes:
      name: "" for the default pass (results in `eval_results.json`), else the split's name
        (`val1`, `base`, `zero_shot_split2`, `heldout`; results in `eval_results_<name>.json`).
      data: the list file (a path) or TFDS spec.
      labels: the label file (a path or built-in label name).
      class_names: `class_names[i]` = label id i of the list.
      source: the opened data source.
      class_info: what the objective scores these classes with (`Objective.class_info`).
      half_masks: bool `[S, C]` class subsets of half-class zero-shot (S = 0: off).
      limit: videos that count, in list order (all, or whole batches with `drop_last_eval`).
    """

    name: str
    data: str
    labels: str
    class_names: tuple[str, ...]
    source: Any
    class_info: Any
    half_masks: np.ndarray
    limit: int


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What `make_plan` resolved. `config` is the resolved copy (lists are paths)."""

    config: ml_collections.ConfigDict
    workdir: str
    objective: objectives.Objective
    model: actionclip.ActionCLIP
    spec: dict
    class_names: tuple[str, ...]
    train_source: Any  # None for evaluation-only runs
    val: EvalTask | None  # evaluated every `eval_every_epochs` while training
    heldout: EvalTask | None  # data.heldout, evaluated at the end of training
    protocol: tuple[EvalTask, ...]  # the configured protocol's passes
    resume_step: int | None  # the run's newest readable checkpoint, if any
    pretrained: Mapping | None  # init.checkpoint's weights (host), when a new run starts there
    # θ₀ (the `clip` subtree, host) when the objective or weight_space.interpolate needs it; None
    # there means the run's own random initial weights (no init.clip or init.checkpoint).
    reference: Mapping | None = None

    @property
    def final_tasks(self) -> tuple[EvalTask, ...]:
        """The passes after training: held-out combinations, then the protocol's own splits."""
        extra = self.protocol if self.config.eval.splits else ()
        return ((self.heldout,) if self.heldout else ()) + tuple(extra)


# ------------------------------------------------------------------------------ config values


def _fail(field: str, message: str):
    raise ConfigError(f"config field {field}: {message}")


def check_values(config) -> None:
    """Fails at once on a value that cannot work (before data or weights are touched)."""
    d, m, e = config.data, config.model, config.eval
    choices = {
        "mode": (config.mode, MODES),
        "model.objective": (m.objective, objectives.NAMES),
        "model.head": (m.head, HEADS),
        "model.frame_stage": (m.frame_stage, FRAME_STAGES),
        "model.dtype": (m.dtype, tuple(DTYPES)),
        "model.remat_policy": (m.remat_policy, REMAT_POLICIES),
        "model.attention_impl": (m.attention_impl, ATTENTION_IMPLS),
        "eval.protocol": (e.protocol, protocols.PROTOCOLS),
        "eval.view_reduce": (e.view_reduce, scoring.VIEW_REDUCTIONS),
        "data.num_crops": (d.num_crops, (1, 3)),
        "data.pixel_norm": (d.pixel_norm, tuple(augment.PIXEL_NORMS)),
        "data.eval_sampling": (d.eval_sampling, EVAL_SAMPLINGS),
        "text.classifier": (config.text.classifier, ("trained", "frozen")),
        "text.class_names": (config.text.class_names, prompts.CLASS_NAME_STYLES),
    }
    for field, (value, allowed) in choices.items():
        if value not in allowed:
            _fail(field, f"{value!r} is not one of {allowed}")
    positive = {
        "data.num_frames": d.num_frames,
        "data.num_clips": d.num_clips,
        "data.batch_size": d.batch_size,
        "data.eval_batch_size": d.eval_batch_size,
        "optim.grad_accum": config.optim.grad_accum,
        "log_every_steps": config.log_every_steps,
        "eval_every_epochs": config.eval_every_epochs,
        "checkpoint.every_steps": config.checkpoint.every_steps,
        "checkpoint.keep": config.checkpoint.keep,
    }
    for field, value in positive.items():
        if not value >= 1:
            _fail(field, f"must be at least 1, got {value!r}")
    if d.workers < 0:
        _fail("data.workers", f"must be >= 0, got {d.workers}")
    if config.text.train_templates < 0:
        _fail("text.train_templates", f"must be >= 0 (0: all), got {config.text.train_templates}")
    if d.eval_stride < 1:
        _fail("data.eval_stride", f"must be at least 1, got {d.eval_stride}")
    if d.eval_scale_size < 0:
        _fail("data.eval_scale_size", f"must be >= 0 (0: input size × 256/224), got "
              f"{d.eval_scale_size}")  # fmt: skip
    _check_loss_and_weight_space(config)
    n_dev = jax.device_count()
    for field, value in (("data.batch_size", d.batch_size), ("data.eval_batch_size",
                                                           d.eval_batch_size)):  # fmt: skip
        if value % n_dev:
            _fail(field, f"{value} must be a multiple of the {n_dev} devices")
    if d.batch_size % config.optim.grad_accum:
        _fail("optim.grad_accum", f"{config.optim.grad_accum} must divide data.batch_size")
    if m.head == "transf" and d.num_frames > m.position_rows:
        _fail(
            "data.num_frames",
            f"{d.num_frames} frames exceed the transf head's {m.position_rows} positions "
            "(model.position_rows)",
        )
    try:
        prompts.resolve_templates(config.text.templates)
    except (FileNotFoundError, ValueError) as err:
        _fail("text.templates", str(err))
    if m.attention_impl == "cudnn":
        if jax.default_backend() != "gpu":
            _fail(
                "model.attention_impl",
                f"'cudnn' runs on NVIDIA GPUs only, and this run's backend is "
                f"{jax.default_backend()}; use '' (JAX's choice) or 'xla'",
            )
        if m.dtype == "float32":
            _fail(
                "model.attention_impl",
                "'cudnn' takes bf16 or fp16 inputs only; set model.dtype=bfloat16, or use ''",
            )


def model_options(config) -> dict:
    """How the model computes (`actionclip.build`'s keyword arguments), from `config.model`."""
    m = config.model
    return dict(
        dtype=DTYPES[m.dtype],
        remat=m.remat,
        remat_policy=m.remat_policy,
        attention_impl=m.attention_impl,
    )


def _check_loss_and_weight_space(config) -> None:
    lo = config.loss
    if not 0.0 <= lo.label_smoothing < 1.0:
        _fail("loss.label_smoothing", f"must be in [0, 1), got {lo.label_smoothing}")
    for field in ("mixup_alpha", "cutmix_alpha"):
        if lo[field] < 0:
            _fail(f"loss.{field}", f"must be >= 0 (0: off), got {lo[field]}")
    if not 0.0 <= lo.mix_switch_prob <= 1.0:
        _fail("loss.mix_switch_prob", f"must be in [0, 1], got {lo.mix_switch_prob}")
    alpha = tuple(lo.interpolation_alpha)
    if len(alpha) != 2 or not 0.0 <= alpha[0] <= alpha[1] <= 1.0:
        _fail("loss.interpolation_alpha", f"must be (low, high), 0 <= low <= high <= 1: {alpha}")
    if lo.interpolation_weight < 0:
        _fail("loss.interpolation_weight", f"must be >= 0, got {lo.interpolation_weight}")
    if lo.distill_weight < 0:
        _fail("loss.distill_weight", f"must be >= 0, got {lo.distill_weight}")
    if lo.distill_form not in froster.DISTILL_FORMS:
        _fail("loss.distill_form", f"{lo.distill_form!r} is not one of {froster.DISTILL_FORMS}")
    if not config.optim.projector_ratio > 0:
        _fail("optim.projector_ratio", f"must be > 0, got {config.optim.projector_ratio}")
    ws = config.weight_space
    if not 0.0 <= ws.interpolate <= 1.0:
        _fail("weight_space.interpolate", f"r must be in [0, 1] (0: off), got {ws.interpolate}")
    epochs = tuple(ws.average_epochs)
    if epochs and (len(epochs) != 2 or not 1 <= epochs[0] <= epochs[1]):
        _fail(
            "weight_space.average_epochs",
            f"must be () or (first, last) with 1 <= first <= last, got {epochs}",
        )
    if epochs and config.mode == "train" and not config.checkpoint.keep_epochs:
        _fail(
            "checkpoint.keep_epochs",
            "weight_space.average_epochs averages the run's epoch checkpoints: set "
            "checkpoint.keep_epochs=True so that they are saved and kept",
        )


# ------------------------------------------------------------------------------------- data


def resolve_data(config):
    """A copy of `config` with the demo's synthetic data generated (once, cached) and filled in,
    and built-in list names in `data.train/val/heldout` made paths."""
    config = copy.deepcopy(config)
    syn = config.data.synthetic
    with config.unlocked():
        if syn.enabled:
            from data_pipeline import synthetic  # pylint: disable=import-outside-toplevel

            counts = (syn.train_per_class, syn.val_per_class, syn.heldout_per_class, syn.size)
            # One cache folder per size of data set: the tiny test data never evicts the demo's.
            root = syn.root or os.path.join(
                synthetic.default_demo_root(), "_".join(map(str, counts))
            )
            files = synthetic.make_demo_dataset(
                root,
                train_per_class=syn.train_per_class,
                val_per_class=syn.val_per_class,
                heldout_per_class=syn.heldout_per_class,
                size=syn.size,
            )
            config.data.train, config.data.val = files["train"], files["val"]
            config.data.heldout, config.data.labels = files["heldout"], files["labels"]
            config.data.root, config.data.kind = files["root"], "video"
        for field in ("train", "val", "heldout"):
            if config.data[field]:
                config.data[field] = splits.resolve_list(config.data[field])
    return config


_DATA_HINT = (
    "Write list and label files from a folder-per-class tree with `python -m "
    "data_pipeline.make_lists --root=VIDEOS --output=DIR`, or point the config at existing "
    "ones (e.g. --config.data.train=...)."
)


def _check_exists(field: str, path: str, hint: str = _DATA_HINT) -> None:
    if not path:
        raise FileNotFoundError(f"config field {field} is empty. {hint}")
    if not path.startswith("tfds:") and not epath.Path(path).exists():
        raise FileNotFoundError(f"config field {field}: {path} does not exist. {hint}")


def _check_labels(field: str, name: str) -> None:
    try:
        path = label_files.resolve_label_file(name)
    except (FileNotFoundError, ValueError) as err:
        raise FileNotFoundError(f"config field {field}: {err}. {_DATA_HINT}") from err
    _check_exists(field, str(path))


def check_data_files(config) -> None:
    """Fails at once, naming the field, when a list or label file the run reads is absent."""
    _check_labels("data.labels", config.data.labels)
    if config.mode == "train":
        _check_exists("data.val", config.data.val)
        _check_exists("data.train", config.data.train)
        if config.data.heldout:
            _check_exists("data.heldout", config.data.heldout)
    if config.mode == "eval" or config.eval.splits:
        for i, (split, labels) in enumerate(_split_specs(config)):
            field = f"eval.splits[{i}]" if config.eval.splits else "data.val"
            _check_exists(field, splits.resolve_list(split))
            _check_labels(f"eval.split_labels[{i}]" if config.eval.split_labels else "data.labels",
                          labels)  # fmt: skip


def _split_specs(config) -> list[tuple[str, str]]:
    """`(list, labels)` of each protocol pass: `eval.splits`, or `data.val` alone."""
    e = config.eval
    if not e.splits:
        return [(config.data.val, config.data.labels)]
    labels = list(e.split_labels) or [config.data.labels]
    if len(labels) == 1:
        labels = labels * len(e.splits)
    if len(labels) != len(e.splits):
        _fail("eval.split_labels", f"has {len(labels)} entries for {len(e.splits)} eval.splits")
    return list(zip(e.splits, labels))


def _split_names(config) -> list[str]:
    e = config.eval
    if not e.splits:
        return [""]
    names = list(e.split_names) or [
        s.rsplit("/", 1)[-1] if s in splits.BUILTIN_LISTS else epath.Path(s).stem
        for s in e.splits
    ]
    if len(names) != len(e.splits) or len(set(names)) != len(names) or "" in names:
        _fail("eval.split_names", f"must be {len(e.splits)} unique, non-empty names: {names}")
    if e.protocol == "base2novel" and set(names) != {"base", "novel"}:
        _fail("eval.split_names", f"base2novel needs the splits 'base' and 'novel', got {names}")
    return names


# ------------------------------------------------------------------------------------ model


def _video_from_config(config) -> dict:
    return {k: config[f.split(".")[0]][f.split(".")[1]] for k, f in _VIDEO_FIELDS.items()}


def _check_resumed_spec(config, saved: Mapping, fields: Mapping, workdir: str) -> None:
    """A resumed run must build the model it saved; a differing field is named."""
    if any(saved.get(k) != v for k, v in fields.items()):
        _fail(
            "model.objective",
            f"the run in {workdir} built a model for another objective ({dict(saved)!r:.120}); "
            "resume with the run's own config, or start a new run with another --workdir",
        )
    asked = _video_from_config(config)
    for key, field in _VIDEO_FIELDS.items():
        if key in saved["video"] and saved["video"][key] != asked[key]:
            _fail(
                field,
                f"the run in {workdir} was trained with {saved['video'][key]!r}, this config asks "
                f"for {asked[key]!r}; resume with the run's own config, or start a new run with "
                "another --workdir",
            )
    if not config.init.checkpoint:  # sizes came from model.clip: they must match too
        for key, value in config.model.clip.items():
            if saved["clip"].get(key) != value:
                _fail(
                    f"model.clip.{key}",
                    f"the run in {workdir} was trained with {saved['clip'].get(key)!r}, this "
                    f"config asks for {value!r}; resume with the run's own config, or start a "
                    "new run with another --workdir",
                )


def _load_pretrained(config, objective_fields: Mapping) -> tuple[dict, dict, dict | None]:
    """`(clip sizes, params, teacher)` of `init.checkpoint`: the parameters reduced to what the
    model will have (with FROSTER's projectors when the file has them and so does the model),
    and the copy of the original CLIP that the file may carry (FROSTER's `raw_model.`), else
    None."""
    path = config.init.checkpoint
    model, params, info = weights.load_actionclip(
        path,
        config.data.num_frames,
        activation=config.init.activation or None,
        clip_source=config.init.clip or None,
        return_info=True,
    )
    kept = info.get("projectors") if objective_fields.get("projectors") else None
    if not config.init.load_head or model.head != config.model.head:
        if config.init.load_head and "fusion" in params:
            logging.warning(
                "init.checkpoint has a %s head but the config asks for %s: the head starts "
                "from random weights",
                model.head,
                config.model.head,
            )
        params = {"clip": params["clip"]}
    if not objective_fields["with_text"]:
        dropped = sorted(k for k in params["clip"] if k != "visual")
        if dropped:
            logging.info(
                "model.objective=%s has no text tower: importing the image tower of %s and "
                "dropping %s",
                config.model.objective,
                path,
                ", ".join(dropped),
            )
        params = {**params, "clip": {"visual": params["clip"]["visual"]}}
    if kept:
        logging.info("init.checkpoint %s: its projectors continue training", path)
        params = {**params, **kept}
    return dict(model.clip_sizes), params, info.get("teacher")


def merge_pretrained(init_params, loaded, source: str):
    """Overwrites random-init parameters with loaded ones; shapes must agree.

    Only parameters the checkpoint cannot have may stay random: a new temporal head, a linear
    layer, the joint time embedding when starting from a plain CLIP (as the original's
    strict=False), and what only a training objective reads (FROSTER's projectors).
    """
    flat_init = flax.traverse_util.flatten_dict(init_params, sep="/")
    flat_loaded = flax.traverse_util.flatten_dict(loaded, sep="/")
    unknown = sorted(set(flat_loaded) - set(flat_init))
    if unknown:
        raise weights.CheckpointError(f"{source}: parameters {unknown[:5]} do not fit the model")
    for k, v in flat_loaded.items():
        if tuple(v.shape) != tuple(flat_init[k].shape):
            raise weights.CheckpointError(
                f"{source}: {k} has shape {tuple(v.shape)}, the model needs "
                f"{tuple(flat_init[k].shape)}"
            )
    optional = ("fusion/", "classifier/", *(f"{name}/" for name in actionclip.TRAINING_ONLY))
    missing = [
        k
        for k in flat_init
        if k not in flat_loaded
        and not k.startswith(optional)
        and k != "clip/visual/time_embedding"
    ]
    if missing:
        raise weights.CheckpointError(f"{source} lacks the parameters {missing[:5]}")
    flat_init.update(flat_loaded)
    return flax.traverse_util.unflatten_dict(flat_init, sep="/")


# ------------------------------------------------------------------------------------- plan


def _read_class_names(field: str, labels: str) -> tuple[str, ...]:
    try:
        return tuple(label_files.read_labels(label_files.resolve_label_file(labels)))
    except (FileNotFoundError, ValueError) as err:
        _fail(field, str(err))


def _open_source(data_cfg, data: str, split: str, num_classes: int):
    """A list file or TFDS dataset opened as the config's `data` section says."""
    return sources.open_source(
        data,
        split=split,
        root=data_cfg.root or None,
        labels=num_classes,
        kind=data_cfg.kind or None,
        tfds_data_dir=data_cfg.tfds_data_dir or None,
    )


def make_plan(config, workdir, mode: str | None = None) -> RunPlan:
    """Resolves and checks `config` for a run in `workdir` (see the module docstring).

    Args:
      config: the run's config (not modified).
      workdir: the run's folder; its newest readable checkpoint decides the model.
      mode: "train" or "eval"; default `config.mode`.
    """
    config = copy.deepcopy(config)
    if mode is not None:
        with config.unlocked():
            config.mode = mode
    check_values(config)
    config = resolve_data(config)
    check_data_files(config)
    workdir = os.fspath(workdir)
    d = config.data

    class_names = _read_class_names("data.labels", d.labels)
    module_fields = objectives.model_fields(config.model.objective, len(class_names))
    resume = checkpointing.newest_readable_meta(workdir)
    resume_step, pretrained, teacher = None, None, None
    if resume is not None:  # the run's own model; init.checkpoint is not read
        resume_step, spec = resume[0], resume[1]["model"]
        _check_resumed_spec(config, spec, module_fields, workdir)
    else:
        sizes = config.model.clip.to_dict()
        if config.init.checkpoint:
            _check_exists(
                "init.checkpoint", config.init.checkpoint,
                "Give an OpenAI CLIP .pt, an ActionCLIP checkpoint or a converted directory, or "
                "--config.init.checkpoint= for random initial weights.",
            )  # fmt: skip
            sizes, pretrained, teacher = _load_pretrained(config, module_fields)
        spec = {"clip": sizes, "video": _video_from_config(config), **module_fields}
    model = actionclip.build(spec, **model_options(config))
    try:
        objective = objectives.make(config, model, class_names)
    except descriptions.DescriptionError as err:
        _fail("text.descriptions", str(err))
    except ValueError as err:  # the objective's own checks name their fields
        _fail("model.objective", f"{config.model.objective}: {err}")

    reference = None
    # The objective reads θ₀ in training only (evaluation scores the run's own weights).
    if (objective.needs_reference and config.mode == "train") or config.weight_space.interpolate:
        reference = load_reference(
            config, model, pretrained, evaluates_init=resume is None, teacher=teacher
        )

    if not objective.scores_unseen_classes and config.eval.protocol in ("zero_shot", "base2novel"):
        _fail(
            "eval.protocol",
            f"{config.eval.protocol!r} scores classes that training never sees, which "
            f"model.objective={config.model.objective!r} cannot (it has outputs only for the "
            f"{len(class_names)} classes of data.labels); use model.objective='video_text'",
        )

    def task(name, data, labels, names, field):
        what = f"{field} ({data})"
        try:
            info = objective.class_info(names)
        except descriptions.DescriptionError as err:
            _fail("text.descriptions", f"{what}: {err}")
        except ValueError as err:
            _fail(field, f"{what}: {err}")
        source = _open_source(d, data, d.val_split, len(names))
        n = len(source)
        limit = (n // d.eval_batch_size) * d.eval_batch_size if d.drop_last_eval else n
        return EvalTask(
            name, data, labels, tuple(names), source, info,
            protocols.half_class_masks(config, len(names)), limit,
        )  # fmt: skip

    protocol = []
    for i, (name, (data, labels)) in enumerate(zip(_split_names(config), _split_specs(config))):
        field = f"eval.splits[{i}]" if config.eval.splits else "data.val"
        names = (
            class_names if labels == d.labels else _read_class_names(f"eval.split_labels[{i}]",
                                                                    labels)
        )  # fmt: skip
        protocol.append(task(name, splits.resolve_list(data), labels, names, field))
    val = heldout = train_source = None
    if config.mode == "train":
        val = next((t for t in protocol if t.name == "" and t.data == d.val), None)
        if val is None:
            val = task("", d.val, d.labels, class_names, "data.val")
        if d.heldout:
            heldout = task("heldout", d.heldout, d.labels, class_names, "data.heldout")
        train_source = _open_source(d, d.train, d.train_split, len(class_names))
        if len(train_source) < d.batch_size:
            _fail(
                "data.batch_size",
                f"{d.train} has {len(train_source)} videos, fewer than one global batch "
                f"({d.batch_size}); lower data.batch_size",
            )
    scored = [class_names] + [t.class_names for t in (*protocol, val, heldout) if t is not None]
    try:
        objective.check_class_lists(scored)
    except descriptions.DescriptionError as err:
        _fail("text.descriptions", str(err))
    return RunPlan(
        config=config,
        workdir=workdir,
        objective=objective,
        model=model,
        spec=spec,
        class_names=class_names,
        train_source=train_source,
        val=val,
        heldout=heldout,
        protocol=tuple(protocol),
        resume_step=resume_step,
        pretrained=pretrained,
        reference=reference,
    )


_CLIP_HINT = (
    "Give the original CLIP weights (an OpenAI CLIP .pt or a converted directory) as "
    "--config.init.clip=FILE."
)


def fit_reference(params, model, source: str):
    """θ₀'s `clip` tree reduced to the model's `clip` parameters; a missing one or a shape that
    differs is a `CheckpointError` naming `source`."""
    want = flax.traverse_util.flatten_dict(actionclip.abstract_params(model)["clip"], sep="/")
    have = flax.traverse_util.flatten_dict(params, sep="/")
    missing = sorted(k for k in want if k not in have)
    if missing:
        raise weights.CheckpointError(
            f"{source} lacks the CLIP parameters {missing[:5]} of the model: it cannot be θ₀ "
            f"(the original CLIP weights). {_CLIP_HINT}"
        )
    for k, leaf in want.items():
        if tuple(have[k].shape) != tuple(leaf.shape):
            raise weights.CheckpointError(
                f"{source}: clip/{k} has shape {tuple(have[k].shape)}, the model's is "
                f"{tuple(leaf.shape)}: not the CLIP this model was made from. {_CLIP_HINT}"
            )
    return flax.traverse_util.unflatten_dict(
        {k: np.asarray(have[k], np.float32) for k in want}, sep="/"
    )


def load_reference(config, model, pretrained=None, evaluates_init: bool = False, teacher=None):
    """θ₀, the original CLIP weights (host `clip` tree): `init.clip`, else `init.checkpoint`.

    None when neither is set: θ₀ is then the run's own random initial weights. `pretrained`
    (init.checkpoint's weights, already read) is reused rather than read twice; from a file that
    carries a copy of the CLIP its model started from (FROSTER's training checkpoints: `teacher`,
    already read, or read here) θ₀ is that copy.
    `evaluates_init`: the weights to score are init.checkpoint's (no run checkpoint), so θ₀
    cannot also come from it.
    """
    if config.init.clip:
        field, path = "init.clip", config.init.clip
    else:
        field, path = "init.checkpoint", config.init.checkpoint
        if path and evaluates_init and config.mode == "eval":
            _fail(
                "init.clip",
                "weight_space.interpolate mixes the evaluated weights (init.checkpoint) with the "
                "original CLIP weights, which must come from elsewhere. " + _CLIP_HINT,
            )
    if not path:
        return None
    if field == "init.checkpoint" and teacher is not None:
        params, what = teacher, "its copy of the original CLIP (raw_model.)"
    elif field == "init.checkpoint" and pretrained is not None:
        params, what = pretrained["clip"], "its CLIP"
    else:
        _check_exists(field, path, _CLIP_HINT)
        # θ₀ must be the model's CLIP: a plain state dict is read with the model's activation.
        _, params = weights.load_clip(
            path,
            activation=model.clip_sizes.get("activation"),
            clip_source=config.init.clip or None,
            original=True,
        )
        what = "its original CLIP where it holds a copy, else its CLIP"
    logging.info("θ₀ (the original CLIP weights) from %s: %s, %s", field, path, what)
    return fit_reference(params, model, f"{field} ({path})")


def run_info(plan: RunPlan) -> dict:
    """What a trained model scores with, recorded beside its weights: the objective, the
    training classes, the prompt templates and how class names are written in them (a
    checkpoint must not need the label file)."""
    return {
        "objective": plan.config.model.objective,
        "class_names": list(plan.class_names),
        "templates": list(prompts.resolve_templates(plan.config.text.templates)),
        "class_name_style": plan.config.text.class_names,
    }


def model_plan(config, class_names) -> RunPlan:
    """A plan of the model and objective alone, with random weights and no data or workdir:
    what benchmarks and tools that feed their own batches need."""
    check_values(config)
    fields = objectives.model_fields(config.model.objective, len(class_names))
    spec = {"clip": config.model.clip.to_dict(), "video": _video_from_config(config), **fields}
    model = actionclip.build(spec, **model_options(config))
    return RunPlan(
        config=config,
        workdir="",
        objective=objectives.make(config, model, class_names),
        model=model,
        spec=spec,
        class_names=tuple(class_names),
        train_source=None,
        val=None,
        heldout=None,
        protocol=(),
        resume_step=None,
        pretrained=None,
    )


def check_nothing_random(plan: RunPlan) -> None:
    """Evaluating `init.checkpoint` directly: fails when it lacks parameters the model has (a
    temporal head or linear layer of another kind), which would be scored from random weights."""
    have = flax.traverse_util.flatten_dict(plan.pretrained or {}, sep="/")
    want = flax.traverse_util.flatten_dict(
        actionclip.inference_params(actionclip.abstract_params(plan.model)), sep="/"
    )  # what only training reads (FROSTER's projectors) may be random: scoring never uses it
    random = sorted(k for k in want if k not in have)
    if random:
        field = "model.objective" if any(k.startswith("classifier/") for k in random) else (
            "model.head" if any(k.startswith("fusion/") for k in random) else "model.frame_stage"
        )
        _fail(
            field,
            f"{plan.config.init.checkpoint} holds no {random[0].split('/')[0]} parameters for "
            f"this model ({', '.join(random[:3])}...): evaluating random weights measures "
            "nothing. Set the field to what the checkpoint was trained with (a CLIP file: "
            "model.head=meanP, model.frame_stage=none), or evaluate the --workdir of a run that "
            "trained it",
        )


def init_key(config):
    """The key of a run's random initial parameters (the first half of the seed's split; the
    second seeds the train state's own stream)."""
    return jax.random.split(jax.random.key(config.seed))[0]


def initial_params(plan: RunPlan, rng, shardings):
    """Parameters of a new run: random init, overwritten by `plan.pretrained` where given."""
    params = jax.jit(lambda r: actionclip.init_params(plan.model, r), out_shardings=shardings)(rng)
    if plan.pretrained is None:
        return params
    merged = merge_pretrained(jax.device_get(params), plan.pretrained, plan.config.init.checkpoint)
    return jax.device_put(merged, shardings)  # host-side merge, placed with the same shardings
