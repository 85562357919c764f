"""orbax checkpoints of a run: train state, data-iterator state and run metadata.

Kept: the last `checkpoint.keep` steps and the best by top-1. Saves are asynchronous; orbax
writes each step to a temporary directory and renames it when complete, so a run killed at any
point (also mid-save) resumes from the last complete step.
"""

import grain
import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath


def _layout(config) -> dict:
    return {"process_count": jax.process_count(), "workers": config.data.workers}


class Checkpointer:
    def __init__(self, workdir, config):
        self.config = config
        c = config.checkpoint
        policies = [ocp.checkpoint_managers.LatestN(n=c.keep)]
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
        self.directory = epath.Path(workdir) / "checkpoints"
        self.manager = ocp.CheckpointManager(
            self.directory.resolve() if not str(workdir).startswith("gs://") else self.directory,
            options=options,
            item_names=("state", "data", "meta"),
        )

    def save(self, step: int, state, data_iterator, metrics: dict | None = None):
        meta = {"step": int(step), "layout": _layout(self.config), "config": self.config.to_dict()}
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain.checkpoint.CheckpointSave(data_iterator),
            meta=ocp.args.JsonSave(meta),
        )
        scalars = None if metrics is None else {k: float(metrics[k]) for k in ("top1", "top5")}
        self.manager.save(int(step), args=args, metrics=scalars)

    def latest_step(self):
        return self.manager.latest_step()

    def restore_state(self, step, abstract_state):
        return self.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
        )["state"]

    def restore_or_keep(self, state, shardings, data_iterator, make_iterator, steps_per_epoch):
        """Resumes from the latest checkpoint if there is one.

        Returns `(state, step, data_iterator)`. The iterator resumes exactly when the process and
        worker layout is unchanged; otherwise its order restarts at the start of the current
        epoch (`make_iterator(epoch)`), with a warning, and model and optimiser are resharded.
        """
        step = self.manager.latest_step()
        if step is None:
            return state, 0, data_iterator
        abstract = jax.tree.map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, shardings
        )
        meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        if meta["meta"]["layout"] == _layout(self.config):
            restored = self.manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract),
                    data=grain.checkpoint.CheckpointRestore(data_iterator),
                ),
            )
            logging.info("resumed from step %d of %s", step, self.directory)
            return restored["state"], step, data_iterator
        epoch = step // steps_per_epoch
        logging.warning(
            "the checkpoint at step %d was written by %s, this run has %s: model and optimiser "
            "are restored (resharded) but the data order restarts at the start of epoch %d",
            step,
            meta["meta"]["layout"],
            _layout(self.config),
            epoch,
        )
        return self.restore_state(step, abstract), step, make_iterator(epoch)

    def wait(self):
        self.manager.wait_until_finished()

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()
