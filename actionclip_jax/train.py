"""Training: one pure, jitted `train_step` over a device mesh, and the loop around it.

`train_and_evaluate(config, workdir)` is the whole job: the config becomes a run plan
(`actionclip_jax.plan`: data, classes, model, objective, evaluation passes, resolved and checked
once), then the loop feeds grain batches as global arrays, checkpoints parameters, optimiser and
data-iterator state with orbax, resumes where a killed run stopped, evaluates every
`eval_every_epochs`, and writes TensorBoard metrics. The same code runs on one CPU, a GPU and every
host of a TPU pod slice. What is trained for is the objective's business: the step calls its
`loss_fn`, the evaluators its `predict_fn`.
"""

import copy
import dataclasses
import functools
import signal
import time
import types
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from actionclip_jax import augment, checkpointing, flops, logs, objectives, optim, sharding
from actionclip_jax import weight_space, workdir_lock
from actionclip_jax import plan as plan_lib
from actionclip_jax.evals import passes
from actionclip_jax.models import actionclip
from data_pipeline import pipeline


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array  # raw uint32 key data: checkpoints need no typed keys


# ------------------------------------------------------------------------------- train step


def train_step(state: TrainState, batch, context, *, objective, tx, data_cfg, dtype, grad_accum):
    """One optimiser update on a global batch. Pure: jitted with the state donated.

    The objective's `loss_fn` gets the augmented video, labels, dataset indices and one PRNG key
    per sample (keyed by its index, so a sample's draws do not depend on its place in the batch
    or on the micro-batch it falls in), and a dropout key per micro-batch.
    """
    key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    k_aug, k_sample, k_drop = jax.random.split(key, 3)
    index = batch["index"]
    video = augment.train_video(
        batch["video"],
        augment.per_sample_keys(k_aug, index),
        p_jitter=data_cfg.p_jitter,
        p_gray=data_cfg.p_gray,
        per_frame_jitter=data_cfg.jitter_per_frame,
        dtype=dtype,
        pixel_norm=data_cfg.pixel_norm,
    )
    inputs = {
        "video": video,
        "label": batch["label"],
        "index": index,
        "keys": augment.per_sample_keys(k_sample, index),
    }
    grad_fn = jax.value_and_grad(
        lambda p, x, k: objective.loss_fn(p, x, k, context), has_aux=True
    )
    if grad_accum == 1:
        (loss, aux), grads = grad_fn(state.params, inputs, k_drop)
    else:
        # Micro-batches: the contrastive negatives of each are the other samples in it.
        micro = jax.tree.map(lambda x: x.reshape(grad_accum, -1, *x.shape[1:]), inputs)

        def accumulate(carry, xs):
            loss_sum, grad_sum = carry
            x, i = xs
            (loss, aux), grads = grad_fn(state.params, x, jax.random.fold_in(k_drop, i))
            return (loss_sum + loss, jax.tree.map(jnp.add, grad_sum, grads)), aux

        zeros = jax.tree.map(jnp.zeros_like, state.params)
        (loss, grads), aux = jax.lax.scan(accumulate, (0.0, zeros), (micro, jnp.arange(grad_accum)))
        loss, grads = loss / grad_accum, jax.tree.map(lambda g: g / grad_accum, grads)
        aux = jax.tree.map(lambda a: a[-1], aux)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {
        "loss": loss,
        "grad_norm": optax.tree.norm(grads),
        "bad_samples": jnp.sum(batch["bad"]),
        **aux,
    }
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    return new_state, metrics


# -------------------------------------------------------------------------------- set-up


def local_batch_size(global_batch: int) -> int:
    return global_batch // jax.process_count()


def plan_train_state(plan, mesh, steps_per_epoch: int):
    """The optimiser and the state's shapes and shardings, with nothing allocated.

    Returns a namespace: `tx`, `schedules`, `shardings`, `abstract` (the state as
    `jax.ShapeDtypeStruct`s carrying their shardings, for AOT compilation), and the pure
    function `make_state(params)` → `TrainState`.
    """
    config = plan.config
    init_rng, state_rng = jax.random.split(jax.random.key(config.seed))  # as plan_lib.init_key
    abstract_params = actionclip.abstract_params(plan.model)
    tx, schedules = optim.make_optimizer(
        config.optim,
        abstract_params,
        steps_per_epoch,
        plan.objective.param_groups,
        plan.objective.frozen,
    )

    def make_state(params):
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params),
            rng=jax.random.key_data(state_rng),
        )

    abstract = jax.eval_shape(make_state, abstract_params)
    shardings = sharding.tree_shardings(
        abstract, mesh, config.sharding.fsdp, config.sharding.fsdp_min_size
    )
    return types.SimpleNamespace(
        tx=tx,
        schedules=schedules,
        shardings=shardings,
        abstract=checkpointing.abstract_tree(abstract, shardings),
        make_state=make_state,
        init_rng=init_rng,
    )


def initial_state(plan, state_plan) -> TrainState:
    """A new run's sharded `TrainState`: random init, imported weights where the plan has them."""
    params = plan_lib.initial_params(plan, state_plan.init_rng, state_plan.shardings.params)
    return jax.jit(state_plan.make_state, out_shardings=state_plan.shardings)(params)


def train_context(plan, state_plan, mesh, params):
    """`(context, shardings)`: the device arrays the objective's loss reads.

    The objective's host arrays (replicated); θ₀ as `reference` when the objective reads it
    (sharded like the parameters' `clip` subtree, no optimiser state); then the objective's
    `prepare_context` with the run's current `params` (e.g. a frozen classifier, encoded once).
    """
    context = dict(plan.objective.train_context(plan.class_names))
    replicated = sharding.replicated(mesh)
    if plan.objective.needs_reference:
        context["reference"] = weight_space.reference_params(plan, state_plan.shardings.params)
    context = plan.objective.prepare_context(context, params)
    shardings = {
        k: state_plan.shardings.params["clip"] if k == "reference" else replicated
        for k in context
    }
    return jax.device_put(context, shardings), shardings


def jit_train_step(plan, state_plan, mesh, context_shardings=None):
    """`train_step` bound to the run and jitted as the loop runs it (state donated).

    `context_shardings`: from `train_context` (default: a replicated context)."""
    config = plan.config
    return jax.jit(
        functools.partial(
            train_step,
            objective=plan.objective,
            tx=state_plan.tx,
            data_cfg=config.data,
            dtype=plan.model.dtype,
            grad_accum=config.optim.grad_accum,
        ),
        in_shardings=(
            state_plan.shardings,
            sharding.batch_sharding(mesh),
            sharding.replicated(mesh) if context_shardings is None else context_shardings,
        ),
        out_shardings=(state_plan.shardings, sharding.replicated(mesh)),
        donate_argnums=(0,),
    )


def model_flops(plan, mesh, state, batch, context, lowered=None) -> float | None:
    """Model FLOPs per device of one train step (see `actionclip_jax.flops`); nothing compiles.

    `lowered` (the step as the loop lowers it) is counted as it is unless the run's choices would
    distort XLA's count: remat's recomputation (counted as work), micro-batches (a loop whose
    body XLA counts once) or cuDNN attention (a library call XLA counts as nothing). Then the
    same step on the same arguments is traced without them.
    """
    config = plan.config
    m = config.model
    if lowered is None or m.remat or m.attention_impl == "cudnn" or config.optim.grad_accum > 1:
        config = copy.deepcopy(config)
        with config.unlocked():
            config.model.remat, config.model.attention_impl = False, "xla"
            config.optim.grad_accum = 1
        model = actionclip.build(plan.spec, **plan_lib.model_options(config))
        objective = objectives.make(config, model, plan.class_names)
        plan = dataclasses.replace(plan, config=config, model=model, objective=objective)
        context_shardings = jax.tree.map(lambda x: x.sharding, context)
        step = jit_train_step(plan, plan_train_state(plan, mesh, 1), mesh, context_shardings)
        lowered = step.lower(state, batch, context)
    return flops.lowered_flops(lowered, mesh.size)


def train_data_kwargs(config, input_size: int) -> dict:
    """Keyword arguments of the training pipeline, from the config (its one source of defaults)."""
    d = config.data
    return dict(
        num_frames=d.num_frames,
        input_size=input_size,
        flip=d.flip,
        scales=tuple(d.scales),
        randaug_n=d.randaug_n,
        randaug_m=d.randaug_m,
        seed=config.seed,
        worker_count=d.workers,
        read_threads=d.read_threads,
        strict=d.strict,
        video_backend=d.video_backend,
        decode_timeout_s=d.decode_timeout_s,
    )


class _Preemption:
    """SIGTERM (TPU VM preemption) asks the loop to save and stop at the next step."""

    def __init__(self):
        self.requested = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        del signum, frame
        logging.warning("SIGTERM: saving a checkpoint and stopping")
        self.requested = True

    def restore(self):
        signal.signal(signal.SIGTERM, self._previous)


# -------------------------------------------------------------------------------- the loop


def train_and_evaluate(config, workdir) -> dict:
    """Trains (and evaluates) as `config` says; returns the last evaluation's results.

    The run holds the workdir's lock (`workdir_lock`) from before it reads the workdir to the
    end: a second run on the same workdir refuses to start.
    """
    workdir = str(workdir)
    with workdir_lock.hold(workdir) as lock:
        return _train_and_evaluate(config, workdir, lock)


def _train_and_evaluate(config, workdir: str, lock) -> dict:
    plan = plan_lib.make_plan(config, workdir, mode="train")
    config = plan.config
    mesh = sharding.make_mesh()
    global_batch = config.data.batch_size
    steps_per_epoch = len(plan.train_source) // global_batch
    schedule_steps = int(config.optim.epochs * steps_per_epoch)
    total_steps = schedule_steps
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)

    state_plan = plan_train_state(plan, mesh, steps_per_epoch)
    # A resumed run is restored below: only shapes are needed.
    state = initial_state(plan, state_plan) if plan.resume_step is None else state_plan.abstract
    logs.log_parameter_overview(state_plan.abstract.params)
    kwargs = train_data_kwargs(config, plan.model.clip_sizes["image_resolution"])

    def make_iterator(epoch: int = 0):
        # A nominal epoch is steps_per_epoch global batches of the shuffled, repeated stream.
        return pipeline.make_train_iterator(
            plan.train_source,
            batch_size=local_batch_size(global_batch),
            start_position=epoch * steps_per_epoch * global_batch,
            **kwargs,
        )

    ckpt = checkpointing.Checkpointer(
        workdir, config, plan.spec, plan_lib.run_info(plan), steps_per_epoch
    )
    batches = writer = preemption = None
    try:  # from here on, an error closes orbax's manager: its threads print nothing after it
        state, start_step, train_iter, restored = ckpt.restore_or_keep(
            plan.resume_step, state, state_plan.shardings, make_iterator, steps_per_epoch
        )
        batches = pipeline.WatchedIterator(train_iter, "training data")
        context, context_shardings = train_context(plan, state_plan, mesh, state.params)
        step_fn = jit_train_step(plan, state_plan, mesh, context_shardings)
        writer = logs.MetricWriter(workdir)
        progress = logs.ProgressReport(total_steps, start_step)
        preemption = _Preemption()
        [val], final = passes.make_evaluators(plan, mesh, [plan.val], plan.final_tasks)
        results = {}
        bad_total = int(restored.get("bad_samples_total", 0))
        trained = start_step  # the steps `state` holds (for a save after a worker's death)
        window, t_window, wait = [], time.perf_counter(), 0.0
        compiled, flops_per_step = None, None

        def counters():  # read at saves only: the window's device values are fetched then
            pending = jax.device_get([m["bad_samples"] for m in window]) if window else []
            return {"bad_samples_total": bad_total + int(sum(pending))}

        for step in range(start_step, total_steps):
            # A failed background save (or a lost gs:// lock) stops the run before the next step.
            ckpt.check()
            lock.check()
            t0 = time.perf_counter()
            batch = pipeline.to_global(next(batches), mesh)
            wait += time.perf_counter() - t0
            if compiled is None:  # compiled once, ahead of time; FLOPs counted from the trace
                lowered = step_fn.lower(state, batch, context)
                flops_per_step = model_flops(plan, mesh, state, batch, context, lowered)
                compiled = lowered.compile()
                window, t_window, wait = [], time.perf_counter(), 0.0
            state, metrics = compiled(state, batch, context)
            window.append(metrics)
            done = trained = step + 1
            if done % config.log_every_steps == 0 or done == total_steps:
                host = jax.device_get(window)
                elapsed = max(time.perf_counter() - t_window, 1e-9)
                bad_total += int(sum(m["bad_samples"] for m in host))
                scalars = {
                    "train/loss": np.mean([m["loss"] for m in host]),
                    "train/grad_norm": np.mean([m["grad_norm"] for m in host]),
                    "train/videos_per_second": len(host) * global_batch / elapsed,
                    "train/bad_samples_total": bad_total,
                    "train/data_wait_fraction": wait / elapsed,
                    **flops.utilisation(flops_per_step, len(host) / elapsed, plan.model.dtype),
                }
                extra = sorted(set(host[-1]) - {"loss", "grad_norm", "bad_samples"})
                scalars.update({f"train/{k}": host[-1][k] for k in extra})
                scalars.update({f"lr/{g}": s(step) for g, s in state_plan.schedules.items()})
                writer.write_scalars(done, scalars)
                window, t_window, wait = [], time.perf_counter(), 0.0
            progress(done, force=done == total_steps)
            epoch_end = done % steps_per_epoch == 0
            epoch = done // steps_per_epoch
            t_pause = time.perf_counter()
            if (epoch_end and epoch % config.eval_every_epochs == 0) or done == total_steps:
                measured = passes.measure(plan, [val], state.params, done)
                weights = ""  # what weight_space.* did to the weights the final passes score
                if done == total_steps and final:
                    # The final passes score what `weight_space.*` makes of the weights (the
                    # validation pass above, the run's weights as they are) once the run has
                    # trained its whole schedule; one stopped short by max_steps (resumable to
                    # its end) scores them as they are.
                    weights, scored = weight_space.describe(config), state.params
                    if weights and done < schedule_steps:
                        logging.warning(
                            "max_steps stops the run at step %d of %d: the final passes score "
                            "its weights as they are, not the %s (weight_space.*) of a finished "
                            "run", done, schedule_steps, weights,
                        )  # fmt: skip
                        weights = ""
                    elif weights:
                        if tuple(config.weight_space.average_epochs):
                            ckpt.wait()  # the epoch checkpoints it averages are saved async
                        scored = weight_space.evaluation_params(
                            plan, state.params, state_plan.shardings.params, done, steps_per_epoch
                        )
                    measured.update(passes.measure(plan, final, scored, done, weights))
                    scored = None
                ckpt.save(done, state, train_iter, metrics=measured[""][1], counters=counters())
                # The results cite this checkpoint: they are written once it is on disk.
                ckpt.wait()
                per = passes.publish(plan, measured, done, writer, workdir)
                results = per.pop("")
                if plan.heldout is not None and "heldout" in per:
                    results["heldout"] = per.pop("heldout")
                if per:  # the protocol's own passes
                    results["protocol"] = passes.summarize(plan, per, workdir, weights)
            elif (
                done % config.checkpoint.every_steps == 0
                or preemption.requested
                or (epoch_end and config.checkpoint.keep_epochs)
            ):
                ckpt.save(done, state, train_iter, counters=counters())
            t_window += time.perf_counter() - t_pause  # rates count training time only
            if preemption.requested:
                break
    except pipeline.DataWorkerError as err:
        raise _saved_after_worker_death(
            err, ckpt, trained, total_steps, state, train_iter, counters
        ) from err
    finally:
        if preemption is not None:
            preemption.restore()
        try:
            ckpt.close()  # waits for the last async save, which holds the iterator's state
        finally:
            if writer is not None:
                writer.close()
            if batches is not None:
                batches.close()  # stops its worker and decoder processes at once
    return results


def _saved_after_worker_death(err, ckpt, trained, total_steps, state, train_iter, counters):
    """Saves the steps trained since the last checkpoint once a data worker has died (of the
    training or an evaluation pipeline); returns the error to raise, which says where the run
    stands and how to go on.

    The state is whole (the step that needed the next batch never ran) and so is the training
    iterator's: grain records each worker's position in this process as batches arrive, so a
    run resumed from this checkpoint reads exactly the batches this one did not.
    """
    ckpt.wait()
    last = ckpt.latest_step()
    if jax.process_count() > 1:  # the other hosts wait in collectives: no save can finish
        where = f"its newest checkpoint is step {last}" if last is not None else "it has none"
    elif trained == 0:
        where = "it had trained no step"
    elif last is None or last < trained:
        ckpt.save(trained, state, train_iter, counters=counters())
        ckpt.wait()
        last = trained
        where = f"it saved what it had trained as checkpoint step {trained}"
    else:
        where = f"checkpoint step {last} holds all it trained"
    if last is not None and last >= total_steps:  # a resumed run would have no step to run
        then = "add --config.mode=eval to the same command to evaluate that checkpoint"
    else:
        then = "rerun the same command to resume from there"
    return pipeline.DataWorkerError(f"{err}. The run stopped; {where}: {then}")


def on_multihost_tpu() -> bool:
    """True on a TPU VM that is one worker of a multi-host slice (its metadata says so)."""
    import os  # pylint: disable=import-outside-toplevel

    return bool(os.environ.get("TPU_WORKER_HOSTNAMES", "").count(","))
