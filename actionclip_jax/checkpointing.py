"""orbax checkpoints of a run: parameters, optimiser state, data-iterator state and metadata.

A step's folder holds four items: `params` (the model's parameters alone, so that evaluation and
`load_actionclip(WORKDIR)` read nothing else), `state` (step, optimiser state, PRNG key), `data`
(the grain iterator's position) and `meta` (JSON: the step, process/worker layout, the run's
config, the model spec `models.actionclip.build` takes, what the run scores with (`run`: the
objective, class names and prompt templates), the validation metrics of that step if it was
evaluated, and run counters such as `bad_samples_total`).

Kept: the last `checkpoint.keep` steps, the best by top-1, and with `checkpoint.keep_epochs` the
step that ends every epoch (`meta` records `steps_per_epoch`, so that `weight_space` finds them).
Saves are asynchronous; orbax writes each step to a temporary folder and renames it when complete,
so a run killed at any point (also mid-save) resumes from the last complete step. A save that fails
in the background (a full disk) is raised by `Checkpointer.check`, which the loop calls before every
step, as a `CheckpointSaveError` naming the folder and the cause.

A step that does not read back (a truncated file, an empty `meta/metadata`) is reported in one
line and moved to `WORKDIR/damaged_checkpoints/<step>-<time>`, never deleted, and the newest
intact earlier step is restored instead (moved, so that orbax neither trips on it nor refuses to
save that step number again). A saved state whose tree does not fit the run's (the optimiser's
groups changed with `optim.freeze` or `optim.lr_mults`) is a `CheckpointRestoreError` naming the
config fields that differ from the run's saved config.
"""

from __future__ import annotations

import json
import threading
import time

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from etils import epath

ITEMS = ("params", "state", "data", "meta")
FORMAT_VERSION = 2  # 1 (before the parameters had an item of their own) is not read
DAMAGED_DIR = "damaged_checkpoints"
# Config fields that decide the tree of the saved optimiser state (its parameter groups and its
# chain), named first when a checkpoint's state does not fit the run's.
STATE_FIELDS = (
    "optim.freeze",
    "optim.lr_mults",
    "optim.clip_grad_norm",
    "model.objective",
    "model.head",
    "model.head_layers",
    "data.num_frames",
)


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


class CheckpointRestoreError(ValueError):
    """No step of a run reads, or a step's state does not fit this run's config."""


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be written (e.g. a full disk); the message names folder and cause."""


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

    A step whose metadata does not read is reported in one line and skipped; when none reads,
    `CheckpointRestoreError` (a run must not silently start over, or evaluate other weights).
    """
    steps = _steps(checkpoint_dir(workdir))
    causes = []
    for step in steps:
        try:
            return step, read_meta(workdir, step)
        except (OSError, ValueError) as err:
            if isinstance(err, CheckpointFormatError):
                raise
            causes.append(f"step {step}: {_cause(err)}")
            logging.warning(
                "checkpoint %s, step %d: its metadata does not read (%s); trying the step before",
                checkpoint_dir(workdir) / str(step),
                step,
                _cause(err),
            )
    if steps:
        raise _no_intact_step(workdir, causes)
    return None


def _no_intact_step(workdir, causes) -> CheckpointRestoreError:
    return CheckpointRestoreError(
        f"no checkpoint in {checkpoint_dir(workdir)} reads ({'; '.join(causes)}); nothing was "
        "moved or deleted. Restore the folder from a copy, or start over with another --workdir"
    )


def _cause(err: BaseException) -> str:
    """One line: the exception's type and first line, its middle elided when long (tensorstore
    puts the path first and what the system said, e.g. "No space left on device", last)."""
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= 320 else f"{text[:150]} ... {text[-160:]}"


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
    return newest_readable_meta(workdir)  # raises when none reads


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
        self._saving = None  # the step being written in the background

    def save(self, step: int, state, data_iterator, metrics=None, counters=None):
        """Saves `state` (a `TrainState`), the iterator's position and the metadata at `step`.

        Raises `CheckpointSaveError` when this save, or the one before it, failed.
        """
        self._finish_save()
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
        self._saving = int(step)
        try:
            saved = self.manager.save(int(step), args=args, metrics=meta["metrics"])
        except Exception as err:  # pylint: disable=broad-exception-caught
            self._saving = None
            raise self._save_error(int(step), err) from err
        if not saved:  # orbax skips, silently, a step at or below its newest one
            self._saving = None
            raise self._save_error(
                int(step), None, f"a newer step is already in the folder ({self.latest_step()})"
            )
        if not self.config.checkpoint.async_save:
            self._finish_save()

    def check(self):
        """Raises `CheckpointSaveError` once a background save has failed; returns at once
        while one is still being written."""
        if self._saving is not None and not self.manager.is_saving_in_progress():
            self._finish_save()

    def wait(self):
        """Waits for the save in flight; raises `CheckpointSaveError` if it failed."""
        self._finish_save()

    def _finish_save(self):
        step, self._saving = self._saving, None
        if step is None:
            return
        try:
            self.manager.wait_until_finished()
        except Exception as err:  # pylint: disable=broad-exception-caught
            raise self._save_error(step, err) from err
        if not (self.directory / str(step)).exists():  # orbax skipped finalising it
            raise self._save_error(step, None)

    def _save_error(self, step: int, err, cause="it was not finalised (see above)"):
        """`CheckpointSaveError` naming the step's folder, the cause and the newest good step."""
        cause = _cause(_root_cause(err)) if err is not None else cause
        done = [s for s in run_steps(self.workdir) if s != step]
        last = f"step {done[0]}" if done else "none"
        return CheckpointSaveError(
            f"saving checkpoint step {step} to {self.directory / str(step)} failed: {cause}. "
            f"The run stopped there; its newest complete checkpoint: {last}. Fix the cause (e.g. "
            "free space) and rerun the same command to resume"
        )

    def latest_step(self):
        return self.manager.latest_step()

    def restore_params(self, step: int, abstract_params):
        """`(params, step)`: the parameters alone (no optimiser state, no data position) of
        `step`, or of the newest intact step before it when it is damaged (see the module
        docstring)."""

        def restore(s):
            read_meta(self.workdir, s)  # refuses a foreign format before orbax tries
            self._check_tree(s, "params", abstract_params)
            args = ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params))
            return self.manager.restore(s, args=args)["params"]

        return self._restore_newest_intact(step, restore)

    def restore(self, step: int, abstract_state, data_iterator=None):
        """`(state, meta)` of `step`; the iterator's position too when one is given."""
        meta = read_meta(self.workdir, step)
        self._check_tree(step, "params", abstract_state.params, meta)
        self._check_tree(step, "state", _without_params(abstract_state), meta)
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

        Returns `(state, step, data_iterator, counters)`; `step` is an earlier one than asked
        when the asked one is damaged. The iterator resumes exactly when the process and worker
        layout is unchanged; otherwise its order restarts at the start of the current epoch
        (`make_iterator(epoch)`), with a warning, and model and optimiser are resharded.
        """
        if step is None:
            return state, 0, make_iterator(0), {}
        abstract = abstract_tree(state, shardings)

        def restore(s):
            meta = read_meta(self.workdir, s)
            if meta["layout"] == _layout(self.config):
                iterator = make_iterator(0)
                try:
                    restored, meta = self.restore(s, abstract, iterator)
                except BaseException:
                    iterator.close()  # its worker processes, if it started any
                    raise
                return restored, iterator, meta, None
            restored, meta = self.restore(s, abstract)
            return restored, None, meta, meta["layout"]

        (state, iterator, meta, other_layout), step = self._restore_newest_intact(step, restore)
        if other_layout is None:
            logging.info("resumed from step %d of %s", step, self.directory)
            return state, step, iterator, meta.get("counters", {})
        epoch = step // steps_per_epoch
        logging.warning(
            "the checkpoint at step %d was written by %s, this run has %s: model and optimiser "
            "are restored (resharded) but the data order restarts at the start of epoch %d",
            step,
            other_layout,
            _layout(self.config),
            epoch,
        )
        return state, step, make_iterator(epoch), meta.get("counters", {})

    def _restore_newest_intact(self, step: int, restore):
        """`(restore(s), s)` for the newest step `s <= step` that reads.

        Steps that do not read are reported in one line each and, once an intact step has been
        restored, moved to `WORKDIR/damaged_checkpoints/` with the newer ones the plan skipped
        (their metadata did not read); with no intact step, nothing is moved and
        `CheckpointRestoreError` lists each step's cause.
        """
        causes = {}
        for s in [x for x in run_steps(self.workdir) if x <= step]:
            try:
                result = restore(s)
                error = None
            except (CheckpointFormatError, CheckpointRestoreError):
                raise
            except Exception as err:  # pylint: disable=broad-exception-caught
                # tensorstore raises a bare `Exception` for a truncated file; a bug that fails
                # every step ends in the error below, which names it, with nothing moved.
                result, error = None, err
            if not _all_processes_ok(error is None):
                causes[s] = _cause(_root_cause(error)) if error else "it did not read elsewhere"
                continue
            self._set_aside([x for x in run_steps(self.workdir) if x > s], causes, s)
            return result, s
        raise _no_intact_step(self.workdir, [f"step {s}: {c}" for s, c in causes.items()])

    def _set_aside(self, steps, causes, restored: int):
        """Moves damaged steps out of orbax's folder: one line each (a step the plan skipped
        for its metadata was reported by the plan, in one line, already)."""
        if not steps:
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = epath.Path(self.workdir) / DAMAGED_DIR
        if jax.process_index() == 0:
            target.mkdir(parents=True, exist_ok=True)
            for s in steps:
                dest = target / f"{s}-{stamp}"
                source = self.directory / str(s)
                source.rename(dest)
                if s in causes:
                    logging.warning(
                        "checkpoint %s, step %d does not read (%s): moved to %s (kept, not "
                        "deleted); using step %d",
                        source, s, causes[s], dest, restored,
                    )  # fmt: skip
                else:
                    logging.info("checkpoint step %d moved to %s (kept, not deleted)", s, dest)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel

            multihost_utils.sync_global_devices("checkpointing.set_aside")
        self.manager.reload()

    def _check_tree(self, step: int, item: str, target, meta=None):
        """Raises `CheckpointRestoreError` naming config fields when the saved tree of `item`
        does not fit `target` (a tree metadata file that does not read is damage, not this)."""
        path = self.directory / str(step) / item
        saved = ocp.PyTreeCheckpointHandler().metadata(path)
        if saved is None:
            raise FileNotFoundError(f"{path}: the tree metadata (_METADATA) does not read")
        have, want = _leaf_shapes(saved.tree), _leaf_shapes(target)
        if have == want:
            return
        only_saved = sorted(set(have) - set(want))
        only_here = sorted(set(want) - set(have))
        reshaped = sorted(k for k in set(have) & set(want) if have[k] != want[k])
        detail = "; ".join(
            f"{what} {len(keys)} leaves, e.g. {'/'.join(keys[0])}"
            + (f" {have[keys[0]]} vs {want[keys[0]]}" if what == "reshaped" else "")
            for what, keys in (("only in the checkpoint:", only_saved),
                               ("only in this run:", only_here), ("reshaped", reshaped))
            if keys
        )  # fmt: skip
        meta = meta if meta is not None else read_meta(self.workdir, step)
        raise CheckpointRestoreError(
            f"checkpoint step {step} in {self.directory} does not fit this run: "
            f"{_config_diff(meta.get('config', {}), self.config.to_dict())} (its {item} tree "
            f"differs: {detail}). Resume with the run's own config, or start a new run with "
            "another --workdir"
        )

    def close(self):
        """Waits for the save in flight (raising `CheckpointSaveError` if it failed) and closes
        orbax's manager and its background threads."""
        try:
            self._finish_save()
        finally:
            try:
                self.manager.close()
            finally:
                _join_write_threads()


def _without_params(state):
    return {"step": state.step, "opt_state": state.opt_state, "rng": state.rng}


def _join_write_threads(timeout_secs: float = 300.0):
    """Waits for orbax's per-operation writer threads.

    When one write of a save fails, orbax reports the save as failed while its other writers
    may still run; at interpreter exit they would fail to schedule work and print tracebacks
    after the run's error message. orbax's threads re-raise their failure from `join`; that
    failure is the save's, which `_finish_save` has already turned into a CheckpointSaveError.
    """
    for thread in threading.enumerate():
        if thread is threading.current_thread() or not thread.is_alive():
            continue
        if type(thread).__module__.startswith("orbax.") and not thread.daemon:
            try:
                thread.join(timeout_secs)
            except Exception as err:  # pylint: disable=broad-exception-caught
                logging.info("an orbax writer thread ended with: %s", _root_cause(err))


def _root_cause(err: BaseException) -> BaseException:
    """The innermost exception of a chain (orbax re-raises what tensorstore or the OS said)."""
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        nxt = err.__cause__ or err.__context__
        if nxt is None:
            break
        err = nxt
    return err


def _key_name(key) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _leaf_shapes(tree) -> dict:
    """`{path: shape}` of a tree's array leaves; saved and in-memory trees give equal paths
    (orbax saves a named tuple's fields as dict keys)."""
    return {
        tuple(_key_name(k) for k in path): tuple(leaf.shape)
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
        if hasattr(leaf, "shape")
    }


def _flat_config(config: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flat_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.loads(json.dumps(v))  # tuples as lists, as saved
    return out


def _config_diff(saved: dict, current: dict) -> str:
    """Names the config fields of `STATE_FIELDS` (else any) whose value differs from the run's."""
    a, b = _flat_config(saved), _flat_config(current)
    differ = [f for f in sorted(set(a) | set(b)) if a.get(f) != b.get(f)]
    named = [f for f in STATE_FIELDS if f in differ] or differ
    if not named:
        return "no config field differs from the run's saved config"
    return "config field " + ", ".join(
        f"{f} was {a.get(f)!r} when the checkpoint was saved, is {b.get(f)!r} now"
        for f in named[:4]
    )


def _all_processes_ok(ok: bool) -> bool:
    """Whether `ok` holds on every process (a damaged shard may be read by one process only)."""
    if jax.process_count() == 1:
        return ok
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel

    return bool(np.all(multihost_utils.process_allgather(np.int32(ok))))
