"""A training run's workdir as a model: its parameters and what it scores with, nothing else.

`load_run(WORKDIR)` reads one checkpoint of a run (the newest by default, a given `step`, or the
best by validation top-1 where the run recorded it): the `params` item alone (no optimiser state,
no data position) and the metadata beside it, which holds the model's spec, the class names and
prompt templates the run trained with, and its config. `actionclip_jax.load_actionclip(WORKDIR)`
and the `predict` / `convert` commands read runs through here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from actionclip_jax import checkpointing
from actionclip_jax.models import actionclip


@dataclasses.dataclass(frozen=True)
class Run:
    """One checkpoint of a run: the model, its parameters (host numpy) and its metadata."""

    model: actionclip.ActionCLIP
    params: Any
    step: int
    meta: dict

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("run", {}).get("class_names", ()))

    @property
    def templates(self) -> tuple[str, ...]:
        return tuple(self.meta.get("run", {}).get("templates", ()))

    @property
    def objective(self) -> str:
        return self.meta.get("run", {}).get("objective", "video_text")


def load_run(path, step: int | None = None, best: bool = False, dtype=jnp.float32,
             remat: bool = False) -> Run:  # fmt: skip
    """Reads a run's checkpoint (see the module docstring).

    Args:
      path: the run's workdir (local or gs://).
      step: a checkpoint step; default the newest readable one.
      best: the step with the best validation top-1 instead.
      dtype, remat: the model's compute dtype and rematerialisation.
    """
    chosen, meta = checkpointing.choose_step(path, step=step, best=best)
    model = actionclip.build(meta["model"], dtype=dtype, remat=remat)
    target = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), actionclip.abstract_params(model)
    )
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
    # The newest step by default; if its parameters do not read, the steps before it (one line
    # each), as a resumed run does. A step asked for by number or as the best is that one only.
    candidates = [chosen] if step is not None or best else [
        s for s in checkpointing.run_steps(path) if s <= chosen
    ]  # fmt: skip
    causes = []
    for candidate in candidates:
        item = checkpointing.checkpoint_dir(path) / str(candidate) / "params"
        try:
            params = ocp.PyTreeCheckpointer().restore(item, item=target, restore_args=restore_args)
        except Exception as err:  # pylint: disable=broad-except - orbax raises many kinds
            causes.append(f"step {candidate}: {type(err).__name__}: {str(err)[:200]}")
            logging.warning("%s: the parameters of step %d do not read (%s)", path, candidate,
                            causes[-1])  # fmt: skip
            continue
        if candidate != chosen:
            meta = checkpointing.read_meta(path, candidate)
        return Run(model=model, params=params, step=candidate, meta=meta)
    raise checkpointing.CheckpointRestoreError(
        f"no checkpoint's parameters in {checkpointing.checkpoint_dir(path)} read: "
        + "; ".join(causes)
    )
