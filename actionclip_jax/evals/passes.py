"""Running a run's evaluation passes and publishing what they measured.

The loop (`train.py`) and evaluation-only runs (`evaluate.py`) both go through here: evaluators
are made once per run over one jitted eval step (`make_evaluators`), each pass is measured
(`measure`, over `Evaluator.run`) and then published (`publish`, over `reports.publish_pass`),
and a protocol's passes are summarised (`summarize`).
"""

from actionclip_jax.evals import evaluator as evaluator_lib
from actionclip_jax.evals import protocols, reports


def make_evaluators(plan, mesh, *task_lists):
    """One list of evaluators per list of tasks, all over the run's one jitted eval step."""
    config = plan.config
    step = evaluator_lib.make_eval_step(
        plan.objective, plan.model.dtype, mesh, config.eval.view_reduce, config.data.pixel_norm
    )
    size = plan.model.clip_sizes["image_resolution"]
    return [
        [evaluator_lib.Evaluator(t, step, plan.objective, plan.config.data, size, mesh)
         for t in tasks]
        for tasks in task_lists
    ]  # fmt: skip


def evaluate(plan, evaluators, params, step: int, writer, workdir, weights: str = "") -> dict:
    """Runs `evaluators` and publishes each pass; returns `{name: results}`.

    `weights` says what was done to the run's weights before scoring (`weight_space.describe`;
    "" = scored as they are), recorded with each result."""
    measured = measure(plan, evaluators, params, step, weights)
    return publish(plan, measured, step, writer, workdir)


def measure(plan, evaluators, params, step: int, weights: str = "") -> dict:
    """Runs `evaluators`; returns `{name: (evaluator, results, counts)}`, nothing written yet
    (the loop publishes once the checkpoint the results cite is on disk). `weights`: as
    `evaluate`'s."""
    meta = protocols.result_metadata(plan.config, plan.objective.with_text)
    meta["weights"] = weights or "as trained"
    out = {}
    for ev in evaluators:
        results, counts = ev.run(params)
        if counts["half_count"].size:
            results.update(protocols.half_class_summary(counts))
        results.update(checkpoint_step=int(step), **meta)
        out[ev.name] = (ev, results, counts)
    return out


def publish(plan, measured: dict, step: int, writer, workdir) -> dict:
    """Writes what `measure` returned (files and TensorBoard); returns `{name: results}`."""
    config = plan.config
    out = {}
    for name, (ev, results, counts) in measured.items():
        reports.publish_pass(
            results,
            counts,
            name=name,
            class_names=ev.task.class_names,
            step=step,
            writer=writer,
            workdir=workdir,
            artifacts=config.eval.artifacts,
            top_n=config.eval.top_confusions,
        )
        out[name] = results
    return out


def summarize(plan, per_pass: dict, workdir, weights: str = "") -> dict:
    """The protocol's summary over its passes, written to `eval_results.json` (`weights`: as
    `evaluate`'s)."""
    summary = protocols.summarize_protocol(plan.config, per_pass, plan.objective.with_text)
    summary["weights"] = weights or "as trained"
    reports.publish_summary(summary, workdir)
    return summary
