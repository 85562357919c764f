"""Evaluation-only runs (`config.mode=eval`): the configured protocol on a run's parameters.

`evaluate(config, workdir)` reads the parameters alone (no optimiser is built, no optimiser state
is read) of the workdir's newest checkpoint; only when the workdir has none does it load
`init.checkpoint` (big_vision's order: the run's own weights first, then the initial ones). A file
whose weights would not be used is not required. `weight_space.*` then averages the run's epoch
checkpoints and/or interpolates with the original CLIP weights before scoring. Results go to
`WORKDIR/eval_results*.json`.
"""

import jax

from actionclip_jax import checkpointing, logs, sharding, weight_space, workdir_lock
from actionclip_jax import plan as plan_lib
from actionclip_jax.evals import passes
from actionclip_jax.models import actionclip


def evaluate(config, workdir) -> dict:
    """One evaluation of every pass of the configured protocol; returns its summary.

    The run holds the workdir's lock (`workdir_lock`): it writes results there.
    """
    workdir = str(workdir)
    with workdir_lock.hold(workdir):
        return _evaluate(config, workdir)


def _evaluate(config, workdir: str) -> dict:
    plan = plan_lib.make_plan(config, workdir, mode="eval")
    config = plan.config
    if plan.resume_step is None and plan.pretrained is None:
        raise plan_lib.ConfigError(
            f"nothing to evaluate: {workdir} has no checkpoint and config field init.checkpoint "
            "is empty; pass --config.init.checkpoint=FILE or the --workdir of a trained run"
        )
    if plan.resume_step is None and tuple(config.weight_space.average_epochs):
        raise plan_lib.ConfigError(
            "config field weight_space.average_epochs averages a run's epoch checkpoints, and "
            f"{workdir} has none: pass the --workdir of the run (init.checkpoint is one file)"
        )
    mesh = sharding.make_mesh()
    abstract = actionclip.abstract_params(plan.model)
    shardings = sharding.tree_shardings(
        abstract, mesh, config.sharding.fsdp, config.sharding.fsdp_min_size
    )
    step = 0
    if plan.resume_step is not None:
        ckpt = checkpointing.Checkpointer(workdir, config, plan.spec)
        try:  # a damaged newest step falls back to an earlier one: `step` is the one restored
            params, step = ckpt.restore_params(
                plan.resume_step, checkpointing.abstract_tree(abstract, shardings)
            )
        finally:
            ckpt.close()
    else:
        plan_lib.check_nothing_random(plan)
        params = plan_lib.initial_params(plan, jax.random.key(config.seed), shardings)
    params = weight_space.evaluation_params(plan, params, shardings)
    weights = weight_space.describe(config)
    [evaluators] = passes.make_evaluators(plan, mesh, plan.protocol)
    writer = logs.MetricWriter(workdir)
    try:
        per = passes.evaluate(plan, evaluators, params, step, writer, workdir, weights)
        return passes.summarize(plan, per, workdir, weights)
    finally:
        writer.close()
