"""orbax checkpoints of a run: parameters, optimiser state, data-iterator state and metadata.

A step's folder holds four items: `params` (the model's parameters alone, so that evaluation and
`load_actionclip(WORKDIR)` read nothing else), `state` (step, optimiser state, PRNG key), `data`
(the grain iterator's position) and `meta` (JSON: the step, process/worker layout, the run's
config, the model spec `models.actionclip.build` takes, what the run scores with (`run`: the
objective, class names and prompt templates), the validation metrics of that step if it was
evaluated, and run counters such as `bad_samples_total`).

Kept: the last `checkpoint.keep` steps, the best by top-1, and with `checkpoint.keep_epochs` the
step that ends every epoch (`meta` records `steps_per_epoch`, so that `weight_space` finds them).
Saves are asynchronous; orbax writes each step to a temporary folder and renames it when complete, so a run killed at any point (also
mid-save) resumes from the last complete step.
"""

from __future__ import annotations

import json
import grain
import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath

ITEMS = ("params", "state", "data", "meta")
FORMAT_VERSION = 2  # 1 (before the parameters had an item of their own) is not read


def _layout(config) -> dict:
    return {"process_count": jax.process_count(), "workers": config.data.workers}


def checkpoint_dir(workdir) -> epath.Path:
    workdir = str(workdir)
    path = epath.Path(workdir) / "checkpoints"
    return path if workdir.startswith("gs://") else path.resolve()


def _steps(directory: epath.Path) -> list[int]:
    """Finished steps, newest first (orbax's temporary folders are not integers)."""
    if not directory.exists():
        return []
    return sorted((int(p.name) for p in directory.iterdir() if p.name.isdigit()), reverse=True)


class CheckpointFormatError(ValueError):
    """A checkpoint written by another version of this code, in a layout it cannot read."""


def read_meta(workdir, step: int) -> dict:
    """The `meta` item of one step (raises on a missing, damaged or foreign file)."""
    path = checkpoint_dir(workdir) / str(step) / "meta" / "metadata"
    meta = json.loads(path.read_text())
    if meta.get("format_version", 1) != FORMAT_VERSION:
        raise CheckpointFormatError(
            f"{path}: checkpoint format {meta.get('format_version', 1)}, this version reads "
            f"{FORMAT_VERSION}; resume with the version that wrote it, or start a new --workdir"
        )
    return meta


def newest_readable_meta(workdir) -> tuple[int, dict] | None:
    """`(step, meta)` of the newest step whose metadata reads, or None without checkpoints.

    A step whose metadata does not read is reported in one line and skipped.
    """
    for step in _steps(checkpoint_dir(workdir)):
        try:
            return step, read_meta(workdir, step)
        except (OSError, json.JSONDecodeError) as err:
            logging.warning(
                "checkpoint %s, step %d: its metadata does not read (%s); trying the step before",
                checkpoint_dir(workdir) / str(step),
                step,
                err,
            )
    return None


def run_steps(workdir) -> list[int]:
    """The finished checkpoint steps of a run, newest first."""
    return _steps(checkpoint_dir(workdir))


def is_run(path) -> bool:
    """Whether `path` is the workdir of a training run (it has a checkpoints folder)."""
    return (epath.Path(str(path)) / "checkpoints").is_dir()


def choose_step(workdir, step: int | None = None, best: bool = False) -> tuple[int, dict]:
    """`(step, meta)` of a run: `step` itself, the best by validation top-1 (`best`), or the
    newest readable one."""
    steps = run_steps(workdir)
    if not steps:
        raise FileNotFoundError(f"{workdir} holds no finished checkpoint")
    if step is not None:
        if step not in steps:
            raise FileNotFoundError(f"{workdir} has no checkpoint of step {step}; it has {steps}")
        return step, read_meta(workdir, step)
    if best:
        scored = [(m["metrics"]["top1"], s, m) for s in steps
                  for m in [read_meta(workdir, s)] if m.get("metrics")]  # fmt: skip
        if not scored:
            raise ValueError(f"{workdir}: no checkpoint was saved with validation metrics")
        _, s, meta = max(scored, key=lambda x: (x[0], x[1]))
        return s, meta
    found = newest_readable_meta(workdir)
    if found is None:
        raise FileNotFoundError(f"{workdir}: no checkpoint's metadata reads")
    return found


def read_params(workdir, step: int, abstract_params):
    """The `params` item of one step of a run, read-only (no manager of the run is kept open).

    `abstract_params`: `jax.ShapeDtypeStruct`s (with shardings, e.g. from `abstract_tree`) of the
    model the run's metadata describes.
    """
    read_meta(workdir, step)  # refuses a foreign format before orbax tries
    manager = ocp.CheckpointManager(checkpoint_dir(workdir), item_names=ITEMS)
    try:
        args = ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params))
        return manager.restore(step, args=args)["params"]
    finally:
        manager.close()


def abstract_tree(tree, shardings):
    """`jax.ShapeDtypeStruct`s of `tree` carrying `shardings`: what a restore fills in."""
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
    )


class Checkpointer:
    """Saves and restores one run's checkpoints (see the module docstring)."""

    def __init__(
        self,
        workdir,
        config,
        spec: dict | None = None,
        run: dict | None = None,
        steps_per_epoch: int = 0,
    ):
        self.config, self.spec, self.run = config, spec, dict(run or {})
        self.steps_per_epoch = int(steps_per_epoch)
        c = config.checkpoint
        policies = [ocp.checkpoint_managers.LatestN(n=c.keep)]
        if c.keep_epochs and self.steps_per_epoch:
            policies.append(ocp.checkpoint_managers.EveryNSteps(self.steps_per_epoch))
        if c.keep_best:
            policies.append(
                ocp.checkpoint_managers.BestN(
                    get_metric_fn=lambda m: m["top1"], n=1, keep_checkpoints_without_metrics=False
                )
            )
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=c.async_save,
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
            cleanup_tmp_directories=True,
            create=True,
        )
        self.workdir = str(workdir)
        self.directory = checkpoint_dir(workdir)
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)

    def save(self, step: int, state, data_iterator, metrics=None, counters=None):
        """Saves `state` (a `TrainState`), the iterator's position and the metadata at `step`."""
        meta = {
            "format_version": FORMAT_VERSION,
            "step": int(step),
            "layout": _layout(self.config),
            "config": self.config.to_dict(),
            "model": self.spec,
            "run": self.run,
            "metrics": None if metrics is None else {k: float(metrics[k]) for k in ("top1", "top5")},
            "counters": dict(counters or {}),
            "steps_per_epoch": self.steps_per_epoch,
        }
        args = ocp.args.Composite(
            params=ocp.args.StandardSave(state.params),
            state=ocp.args.StandardSave(_without_params(state)),
            data=grain.checkpoint.CheckpointSave(data_iterator),
            meta=ocp.args.JsonSave(meta),
        )
        self.manager.save(int(step), args=args, metrics=meta["metrics"])

    def latest_step(self):
        return self.manager.latest_step()

    def restore_params(self, step: int, abstract_params):
        """The parameters of `step` alone (no optimiser state, no data position)."""
        read_meta(self.workdir, step)  # refuses a foreign format before orbax tries
        args = ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params))
        return self.manager.restore(step, args=args)["params"]

    def restore(self, step: int, abstract_state, data_iterator=None):
        """`(state, meta)` of `step`; the iterator's position too when one is given."""
        meta = read_meta(self.workdir, step)
        items = {
            "params": ocp.args.StandardRestore(abstract_state.params),
            "state": ocp.args.StandardRestore(_without_params(abstract_state)),
        }
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        state = type(abstract_state)(params=restored["params"], **restored["state"])
        return state, meta

    def restore_or_keep(self, step, state, shardings, make_iterator, steps_per_epoch):
        """Resumes from checkpoint `step`, or keeps `state` when `step` is None.

        Returns `(state, step, data_iterator, counters)`. The iterator resumes exactly when the
        process and worker layout is unchanged; otherwise its order restarts at the start of the
        current epoch (`make_iterator(epoch)`), with a warning, and model and optimiser are
        resharded.
        """
        if step is None:
            return state, 0, make_iterator(0), {}
        abstract = abstract_tree(state, shardings)
        meta = read_meta(self.workdir, step)
        if meta["layout"] == _layout(self.config):
            iterator = make_iterator(0)
            state, meta = self.restore(step, abstract, iterator)
            logging.info("resumed from step %d of %s", step, self.directory)
            return state, step, iterator, meta.get("counters", {})
        epoch = step // steps_per_epoch
        logging.warning(
            "the checkpoint at step %d was written by %s, this run has %s: model and optimiser "
            "are restored (resharded) but the data order restarts at the start of epoch %d",
            step,
            meta["layout"],
            _layout(self.config),
            epoch,
        )
        state, meta = self.restore(step, abstract)
        return state, step, make_iterator(epoch), meta.get("counters", {})

    def wait(self):
        self.manager.wait_until_finished()

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()


def _without_params(state):
    return {"step": state.step, "opt_state": state.opt_state, "rng": state.rng}
