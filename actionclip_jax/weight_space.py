r"""Weight-space tools: uniform checkpoint averaging (SWA) and interpolation with CLIP's weights.

Open-VCLIP (and FROSTER, without the second step) evaluates not its last weights but
1. the uniform average of its epoch checkpoints 2…22 (`weight_average_tool.py`; epoch 1 left out),
2. moved half-way back to the original CLIP: `r·θ₀ + (1 − r)·θ_avg`, r = 0.5 (test-time
   "patching"), on every CLIP weight (both towers and the logit scale).

As config fields (`weight_space.average_epochs`, `weight_space.interpolate`) these change what the
final passes of a training run and evaluation-only runs score; the checkpoints are left as they
are. Averaging needs the epoch checkpoints: `checkpoint.keep_epochs=True` saves and keeps one at
the end of every epoch (a run otherwise keeps only its last `checkpoint.keep` steps and the best).

As a command, each writes a converted directory (`python -m actionclip_jax.convert`'s format,
loadable by `load_actionclip`, `predict` and `init.checkpoint`):

  python -m actionclip_jax.weight_space average --run=WORKDIR --epochs=2,22 --output=SWA_DIR
  python -m actionclip_jax.weight_space average --inputs=DIR_A,DIR_B,DIR_C --output=MEAN_DIR
  python -m actionclip_jax.weight_space interpolate --checkpoint=SWA_DIR --clip=ViT-B-16.pt \
      --ratio=0.5 --output=PATCHED_DIR

`--run` reads the `params` items of a run's orbax checkpoints; `--inputs` and `--checkpoint` take
converted directories (or, for `--checkpoint`, any file `load_actionclip` reads: a released
Open-VCLIP `swa_2_22.pth`, a run's workdir).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
from absl import app, flags

from actionclip_jax import checkpointing, sharding, weights
from actionclip_jax.models import actionclip


class WeightSpaceError(ValueError):
    """Checkpoints that cannot be averaged or interpolated (missing epochs, other models)."""


# ------------------------------------------------------------------------------------ pytrees


def average(trees: Sequence) -> dict:
    """The uniform mean of parameter trees of one structure, in float32."""
    if not trees:
        raise WeightSpaceError("nothing to average: no parameter trees")
    structure = jax.tree.structure(trees[0])
    for t in trees[1:]:
        if jax.tree.structure(t) != structure:
            raise WeightSpaceError("the checkpoints to average hold different parameters")
    total = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), trees[0])
    add = jax.jit(lambda a, b: jax.tree.map(lambda x, y: x + jnp.asarray(y, jnp.float32), a, b))
    for t in trees[1:]:
        total = add(total, t)
    return jax.tree.map(lambda x: x / len(trees), total)


def interpolate(params, reference, ratio: float) -> dict:
    """`ratio·θ₀ + (1 − ratio)·θ` on the `clip` subtree (θ₀ = `reference`), in float32; the rest
    (a temporal head, ...) is left as it is."""
    if not 0.0 <= ratio <= 1.0:
        raise WeightSpaceError(f"the interpolation ratio must be in [0, 1], got {ratio}")
    if jax.tree.structure(reference) != jax.tree.structure(params["clip"]):
        raise WeightSpaceError("θ₀ and the model's CLIP parameters have different structures")
    def mix(p, r):
        return ratio * jnp.asarray(r, jnp.float32) + (1.0 - ratio) * jnp.asarray(p, jnp.float32)

    mixed = jax.tree.map(mix, params["clip"], reference)
    return {**params, "clip": mixed}


# ------------------------------------------------------------------------------------- runs


def epoch_steps(workdir, first: int, last: int, steps_per_epoch: int = 0, extra_steps=()):
    """`{epoch: step}` of a run's epoch checkpoints `first..last` (all must be there).

    Args:
      workdir: the run's folder.
      first, last: epochs (1-based; epoch e ends at step e × steps_per_epoch).
      steps_per_epoch: of the run; 0 = read from its newest checkpoint's metadata.
      extra_steps: steps held elsewhere (in memory) that count as present.
    """
    steps = checkpointing.run_steps(workdir)
    if not steps and not extra_steps:
        raise WeightSpaceError(f"{workdir} holds no finished checkpoint")
    spe = steps_per_epoch or int(checkpointing.read_meta(workdir, steps[0]).get("steps_per_epoch")
                                 or 0)  # fmt: skip
    if not spe:
        raise WeightSpaceError(
            f"{workdir}: its checkpoints do not record steps_per_epoch (written before epoch "
            "checkpoints existed): epochs cannot be told apart"
        )
    present = set(steps) | {int(s) for s in extra_steps}
    wanted = {e: e * spe for e in range(first, last + 1)}
    missing = [e for e, s in wanted.items() if s not in present]
    if missing:
        raise WeightSpaceError(
            f"{workdir} has no checkpoint at the end of epoch(s) {missing} (steps "
            f"{[wanted[e] for e in missing]}; it has steps {sorted(present)}). Train with "
            "--config.checkpoint.keep_epochs=True to keep one per epoch, and average epochs "
            "that the run reaches"
        )
    return wanted


def run_model(workdir, step: int | None = None):
    """`(step, meta, model)` of a run's checkpoint (the newest by default)."""
    step, meta = checkpointing.choose_step(workdir, step)
    return step, meta, actionclip.build(meta["model"])


def average_run(workdir, first: int, last: int, abstract=None, current=None, steps_per_epoch=0):
    """The uniform average of the `params` of a run's epoch checkpoints `first..last`.

    Args:
      workdir: the run's folder.
      first, last: epochs (1-based; epoch e ends at step e × steps_per_epoch).
      abstract: the parameters as `jax.ShapeDtypeStruct`s with shardings (default: the model in
        the run's metadata, replicated on this process's devices).
      current: optional `(step, params)` held in memory, used for that step instead of the disk
        (the last epoch of a run that is finishing: its checkpoint is written after the
        evaluation).
      steps_per_epoch: of the run; 0 = read from its metadata.
    Returns:
      the averaged parameters (float32, sharded like `abstract`).
    """
    extra = () if current is None else (current[0],)
    wanted = epoch_steps(workdir, first, last, steps_per_epoch, extra)
    if abstract is None:
        _, _, model = run_model(workdir)
        mesh = sharding.make_mesh()
        tree = actionclip.abstract_params(model)
        abstract = checkpointing.abstract_tree(tree, sharding.tree_shardings(tree, mesh, False, 0))
    total = None
    add = jax.jit(lambda a, b: jax.tree.map(lambda x, y: x + y.astype(jnp.float32), a, b))
    for step in wanted.values():
        if current is not None and step == current[0]:
            params = current[1]
        else:
            params = checkpointing.read_params(workdir, step, abstract)
        if total is None:
            total = jax.tree.map(lambda x: x.astype(jnp.float32), params)
        else:
            total = add(total, params)
    return jax.tree.map(lambda x: x / len(wanted), total)


# ----------------------------------------------------------------------------- config fields


def describe(config) -> str:
    """What `evaluation_params` does under `config`, for result files ("" = the weights as
    they are)."""
    ws = config.weight_space
    parts = []
    if tuple(ws.average_epochs):
        first, last = ws.average_epochs
        parts.append(f"average of epochs {first}-{last}")
    if ws.interpolate:
        parts.append(f"interpolated with the original weights θ₀, r={ws.interpolate:g}")
    return ", ".join(parts)


def evaluation_params(plan, params, shardings, current_step=None, steps_per_epoch=0):
    """The weights a run's final passes or an evaluation-only run scores (`weight_space.*`).

    Args:
      plan: the run plan (config, model, `reference` = θ₀ or None for the run's random init).
      params: the run's current parameters (sharded as `shardings`).
      shardings: the parameters' shardings.
      current_step: the step `params` belong to (used for that epoch instead of the disk).
      steps_per_epoch: of the run (with `current_step`).
    """
    ws = plan.config.weight_space
    if not tuple(ws.average_epochs) and not ws.interpolate:
        return params
    if tuple(ws.average_epochs):
        first, last = (int(e) for e in ws.average_epochs)
        abstract = checkpointing.abstract_tree(actionclip.abstract_params(plan.model), shardings)
        current = None if current_step is None else (current_step, params)
        params = average_run(plan.workdir, first, last, abstract, current, steps_per_epoch)
    if ws.interpolate:
        params = interpolate(params, reference_params(plan, shardings), float(ws.interpolate))
    return jax.device_put(params, shardings)


def reference_params(plan, shardings):
    """θ₀ on the devices, sharded like the parameters' `clip` subtree: `plan.reference`, or the
    run's own random initial weights when it has none."""
    from actionclip_jax import plan as plan_lib  # pylint: disable=import-outside-toplevel

    if plan.reference is not None:
        return jax.device_put(plan.reference, shardings["clip"])
    # Not donated anywhere: a buffer of its own, unlike the train state's.
    return plan_lib.initial_params(plan, plan_lib.init_key(plan.config), shardings)["clip"]


# ---------------------------------------------------------------------------------- command

_ACTION_HELP = "average | interpolate"


def _meta_of(sizes: Mapping, video: Mapping, source: str, kind: str, operation: str, **extra):
    """A converted directory's metadata: `source_kind` is the source's (a recipe keeps its
    scoring in `predict`), `weight_space` what was done to it."""
    return {"clip": dict(sizes), "video": dict(video), "source": source, "source_kind": kind,
            "weight_space": operation, **extra}  # fmt: skip


def _text_model(spec, source):
    if not spec.get("with_text", True):
        raise WeightSpaceError(
            f"{source}: a model without text tower (objective classifier) cannot be written as a "
            "converted directory"
        )
    return actionclip.build(spec)


def average_command(run=None, epochs=None, inputs=None) -> tuple[dict, dict]:
    """`(params, meta)` of `average`: a run's epoch range, or converted directories."""
    if bool(run) == bool(inputs):
        raise app.UsageError("average takes --run (with --epochs) or --inputs, not both")
    if run:
        if not epochs:
            raise app.UsageError("average --run needs --epochs=FIRST,LAST")
        first, last = (int(e) for e in epochs.split(","))
        _, meta, _ = run_model(run)
        _text_model(meta["model"], run)
        # A converted directory holds what the model scores with (not FROSTER's projectors).
        params = actionclip.inference_params(jax.device_get(average_run(run, first, last)))
        spec = meta["model"]
        return params, _meta_of(
            spec["clip"], spec["video"], str(run), "run", f"average of epochs {first}-{last}",
            run=meta.get("run", {}),
        )  # fmt: skip
    trees, first_meta = [], None
    for path in inputs:
        meta = weights.read_converted_meta(path)
        first_meta = first_meta or meta
        if meta["clip"] != first_meta["clip"] or meta["video"] != first_meta["video"]:
            raise WeightSpaceError(f"{path} holds another model than {inputs[0]}")
        _, params = weights.load_actionclip(path)
        trees.append(params)
    return jax.device_get(average(trees)), _meta_of(
        first_meta["clip"], first_meta["video"], ",".join(inputs),
        first_meta.get("source_kind", "converted"), f"average of {len(inputs)} directories",
        recipe=first_meta.get("recipe", ""),
    )  # fmt: skip


def interpolate_command(checkpoint, clip, ratio) -> tuple[dict, dict]:
    """`(params, meta)` of `interpolate`."""
    model, params, info = weights.load_actionclip(checkpoint, clip_source=clip, return_info=True)
    _text_model(actionclip.spec_of(model), checkpoint)
    # θ₀ is the model's CLIP: a plain state dict is read with the model's activation.
    _, reference = weights.load_clip(clip, activation=model.clip_sizes.get("activation"))
    from actionclip_jax import plan as plan_lib  # pylint: disable=import-outside-toplevel

    reference = plan_lib.fit_reference(reference, model, f"--clip ({clip})")
    mixed = actionclip.inference_params(jax.device_get(interpolate(params, reference, ratio)))
    spec = actionclip.spec_of(model)
    return mixed, _meta_of(
        spec["clip"], spec["video"], str(checkpoint), info["kind"],
        f"interpolated with {clip}, r={ratio:g}", recipe=info["recipe"],
        run=weights.recorded_run(checkpoint) or {},
    )  # fmt: skip


def main(argv):
    flag = flags.FLAGS
    if len(argv) != 2 or argv[1] not in ("average", "interpolate"):
        raise app.UsageError(f"give one action: {_ACTION_HELP}")
    if not flag.output:
        raise app.UsageError("--output is required")
    if argv[1] == "interpolate" and not (flag.checkpoint and flag.clip):
        raise app.UsageError("interpolate needs --checkpoint and --clip")
    try:
        if argv[1] == "average":
            params, meta = average_command(flag.run, flag.epochs, flag.inputs)
        else:
            params, meta = interpolate_command(flag.checkpoint, flag.clip, flag.ratio)
        weights.save_converted(flag.output, meta, params, overwrite=flag.overwrite)
    except (OSError, ValueError) as err:  # missing files, other models, missing epochs
        sys.exit(f"weight_space: error: {err}")
    print(f"wrote {flag.output}: {meta['weight_space']} ({meta['source']})")


def _define_flags():
    # Defined only when run as a command: the library is imported by the training loop, whose
    # program has flags of its own.
    flags.DEFINE_string("run", None, "average: a training run's workdir.")
    flags.DEFINE_string("epochs", None, "average --run: FIRST,LAST epochs, e.g. 2,22.")
    flags.DEFINE_list("inputs", None, "average: converted directories to average.")
    flags.DEFINE_string(
        "checkpoint", None, "interpolate: the trained weights (converted dir, run, or a file)."
    )
    flags.DEFINE_string("clip", None, "interpolate: the original CLIP weights (θ₀).")
    flags.DEFINE_float("ratio", 0.5, "interpolate: r of r·θ₀ + (1 − r)·θ.")
    flags.DEFINE_string("output", None, "The converted directory to write.")
    flags.DEFINE_bool("overwrite", False, "Replace an existing converted directory.")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
