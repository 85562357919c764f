"""Training: one pure, jitted `train_step` over a device mesh, and the loop around it.

`train_and_evaluate(config, workdir)` is the whole job: it builds (or imports) the model, feeds
grain batches as global arrays, checkpoints model, optimiser and data-iterator state with orbax,
resumes where a killed run stopped, evaluates every `eval_every_epochs`, and writes TensorBoard
metrics. The same code runs on one CPU, a GPU and every host of a TPU pod slice.
"""

import copy
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

from actionclip_jax import augment, checkpointing, evaluate, losses, optim, prompts, sharding
from actionclip_jax import logs, protocols, weights
from actionclip_jax.models.actionclip import ActionCLIP
from data_pipeline import labels as label_files
from data_pipeline import pipeline, sources

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array  # raw uint32 key data: checkpoints need no typed keys


# ------------------------------------------------------------------------------------ set-up


def resolve_data(config):
    """The config with the demo's synthetic data generated (once, cached) and filled in."""
    syn = config.data.synthetic
    if not syn.enabled:
        return config
    import os  # pylint: disable=import-outside-toplevel

    from data_pipeline import synthetic  # pylint: disable=import-outside-toplevel

    counts = (syn.train_per_class, syn.val_per_class, syn.heldout_per_class, syn.size)
    # One cache folder per size of data set, so the tiny test data never evicts the demo's.
    root = syn.root or os.path.join(synthetic.default_demo_root(), "_".join(map(str, counts)))
    files = synthetic.make_demo_dataset(
        root,
        train_per_class=syn.train_per_class,
        val_per_class=syn.val_per_class,
        heldout_per_class=syn.heldout_per_class,
        size=syn.size,
    )
    config = copy.deepcopy(config)
    with config.unlocked():
        config.data.train, config.data.val = files["train"], files["val"]
        config.data.heldout, config.data.labels = files["heldout"], files["labels"]
        config.data.root = files["root"]
        config.data.kind = "video"
    return config


def check_data_files(config):
    """Fails at once, naming the file and how to make it, when a config's data is absent."""
    from etils import epath  # pylint: disable=import-outside-toplevel

    hint = (
        "Write list and label files from a folder-per-class tree with `python -m "
        "data_pipeline.make_lists --root=VIDEOS --output=DIR`, or point the config at existing "
        "ones (e.g. --config.data.train=...)."
    )
    needed = {"data.labels": config.data.labels, "data.val": config.data.val}
    if config.mode == "train":
        needed["data.train"] = config.data.train
    for field, path in needed.items():
        if not path:
            raise FileNotFoundError(f"config field {field} is empty. {hint}")
        if field == "data.labels":
            try:
                label_files.resolve_label_file(path)
            except (FileNotFoundError, ValueError) as e:
                raise FileNotFoundError(f"{field}: {e}. {hint}") from e
        elif not path.startswith("tfds:") and not epath.Path(path).exists():
            raise FileNotFoundError(f"{field}: {path} does not exist. {hint}")
    if config.init.checkpoint and not epath.Path(config.init.checkpoint).exists():
        raise FileNotFoundError(f"init.checkpoint: {config.init.checkpoint} does not exist")


def class_names(config) -> list[str]:
    return label_files.read_labels(label_files.resolve_label_file(config.data.labels))


def build_model(config, clip_sizes=None, num_classes: int | None = None) -> ActionCLIP:
    """The model of `config` (`clip_sizes` from a checkpoint, else `model.clip`).

    With `model.objective=classifier` the linear layer has `num_classes` outputs, by default the
    number of classes in `data.labels` (read from the label file).
    """
    sizes = dict(clip_sizes or config.model.clip.to_dict())
    if config.model.objective == "classifier" and num_classes is None:
        num_classes = len(class_names(config))
    return ActionCLIP(
        clip_sizes=sizes,
        num_frames=config.data.num_frames,
        frame_stage=config.model.frame_stage,
        head=config.model.head,
        position_rows=config.model.position_rows,
        conv1d_original=config.model.conv1d_original,
        head_layers=config.model.head_layers,
        objective=config.model.objective,
        num_classes=num_classes or 0,
        remat=config.model.remat,
        dtype=DTYPES[config.model.dtype],
    )


def dummy_inputs(model: ActionCLIP, batch: int = 1):
    """Arguments of `model.init`: a video, and tokens unless the model is a classifier."""
    r = model.clip_sizes["image_resolution"]
    video = jnp.zeros((batch, model.num_frames, r, r, 3), jnp.float32)
    if model.objective == "classifier":
        return (video,)
    return video, jnp.zeros((batch, model.clip_sizes["context_length"]), jnp.int32)


def pretrained(config):
    """`(clip sizes, params)` from `init.checkpoint`, or `(None, None)` for random init."""
    if not config.init.checkpoint:
        return None, None
    model, params = weights.load_actionclip(config.init.checkpoint, config.data.num_frames)
    if not config.init.load_head or model.head != config.model.head:
        if config.init.load_head and "fusion" in params:
            logging.warning(
                "init.checkpoint has a %s head but the config asks for %s: the head starts "
                "from random weights",
                model.head,
                config.model.head,
            )
        params = {"clip": params["clip"]}
    if config.model.objective == "classifier":
        params = drop_text_tower(params, config.init.checkpoint)
    return dict(model.clip_sizes), params


def drop_text_tower(params, source: str):
    """Loaded parameters without what a classifier does not build: all of `clip` but `visual`.

    The text tower and the logit scale belong to video–text matching; the unimodal baseline
    imports the image tower (and the temporal head, as for ActionCLIP) and starts its linear
    layer from random weights.
    """
    dropped = sorted(k for k in params["clip"] if k != "visual")
    if dropped:
        logging.info(
            "model.objective=classifier: importing the image tower of %s; dropping its text "
            "tower and logit_scale (%s); the classifier layer starts from random weights",
            source,
            ", ".join(dropped),
        )
    return {**params, "clip": {"visual": params["clip"]["visual"]}}


def merge_pretrained(init_params, loaded, source: str):
    """Overwrites random-init parameters with loaded ones; shapes must agree.

    Only parameters the checkpoint cannot have may stay random: a new temporal head, the
    classifier's linear layer, and the joint time embedding when starting from a plain CLIP (as
    the original's strict=False).
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
    missing = [
        k
        for k in flat_init
        if k not in flat_loaded
        and not k.startswith(("fusion/", "classifier/"))
        and k != "clip/visual/time_embedding"
    ]
    if missing:
        raise weights.CheckpointError(f"{source} lacks the parameters {missing[:5]}")
    flat_init.update(flat_loaded)
    return flax.traverse_util.unflatten_dict(flat_init, sep="/")


# ------------------------------------------------------------------------------- train step


def _per_sample_keys(key, index):
    # Keyed by dataset index, not row: a sample's draws do not depend on where it sits in the
    # global batch, so any process layout sees the same randomness.
    return jax.vmap(jax.random.fold_in, (None, 0))(key, index)


def prepare_train_video(video_uint8, keys, data_cfg, dtype):
    """On-device photometric augmentation + CLIP normalisation of uint8 `[B, T, S, S, 3]`."""

    def one(clip, key):
        return augment.photometric_augment(
            clip[None],
            key,
            p_jitter=data_cfg.p_jitter,
            p_gray=data_cfg.p_gray,
            per_frame_jitter=data_cfg.jitter_per_frame,
        )[0]

    if data_cfg.p_jitter == 0 and data_cfg.p_gray == 0:  # nothing to draw: skip compiling it
        return augment.preprocess_uint8(video_uint8).astype(dtype)
    return augment.normalize(jax.vmap(one)(video_uint8, keys)).astype(dtype)


def train_step(state: TrainState, batch, text_table, *, model, tx, data_cfg, grad_accum: int):
    """One optimiser update on a global batch. Pure: jitted with the state donated.

    video_text: one random template per sample, the symmetric KL loss. classifier: no text
    (`text_table` may be None), softmax cross-entropy on the linear layer's logits.
    """
    key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    k_aug, k_text, k_drop = jax.random.split(key, 3)
    index, labels = batch["index"], batch["label"]
    video = prepare_train_video(
        batch["video"], _per_sample_keys(k_aug, index), data_cfg, model.dtype
    )
    classifier = model.objective == "classifier"
    tokens = None
    if not classifier:
        template = jax.vmap(lambda k: jax.random.randint(k, (), 0, text_table.shape[0]))(
            _per_sample_keys(k_text, index)
        )
        tokens = text_table[template, labels]  # [B, L]: one random template per sample

    def loss_fn(params, video, tokens, labels, k):
        logits, _ = model.apply({"params": params}, video, tokens, train=True, rngs={"dropout": k})
        if classifier:
            return losses.cross_entropy_loss(logits, labels)
        return losses.kl_loss(logits, labels)

    grad_fn = jax.value_and_grad(loss_fn)
    if grad_accum == 1:
        loss, grads = grad_fn(state.params, video, tokens, labels, k_drop)
    else:
        # Micro-batches: the contrastive negatives of each are the other samples in it.
        split = lambda x: x.reshape(grad_accum, -1, *x.shape[1:])

        def accumulate(carry, xs):
            loss_sum, grad_sum = carry
            v, t, y, i = xs
            loss, grads = grad_fn(state.params, v, t, y, jax.random.fold_in(k_drop, i))
            return (loss_sum + loss, jax.tree.map(jnp.add, grad_sum, grads)), None

        zeros = jax.tree.map(jnp.zeros_like, state.params)
        tokens = None if tokens is None else split(tokens)  # a classifier has none
        xs = (split(video), tokens, split(labels), jnp.arange(grad_accum))
        (loss, grads), _ = jax.lax.scan(accumulate, (0.0, zeros), xs)
        loss, grads = loss / grad_accum, jax.tree.map(lambda g: g / grad_accum, grads)

    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {
        "loss": loss,
        "grad_norm": optax.global_norm(grads),
        "bad_samples": jnp.sum(batch["bad"]),
    }
    if "logit_scale" in state.params["clip"]:  # absent from a classifier
        metrics["logit_scale"] = jnp.exp(state.params["clip"]["logit_scale"])
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    return new_state, metrics


# -------------------------------------------------------------------------------- the loop


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


def local_batch_size(global_batch: int, name: str) -> int:
    n_proc, n_dev = jax.process_count(), jax.device_count()
    if global_batch % n_dev:
        raise ValueError(f"{name}={global_batch} must be a multiple of the {n_dev} devices")
    return global_batch // n_proc


def plan_train_state(config, mesh, steps_per_epoch: int, clip_sizes=None):
    """Model, optimiser and the state's shapes and shardings, with nothing allocated.

    Returns a namespace: `model`, `tx`, `schedules`, `shardings`, `abstract` (the state as
    `jax.ShapeDtypeStruct`s carrying their shardings, for AOT compilation), and the pure
    functions `init()` → params and `make_state(params)` → `TrainState` that build it.
    """
    model = build_model(config, clip_sizes)
    init_rng, state_rng = jax.random.split(jax.random.key(config.seed))

    def init():
        return model.init(init_rng, *dummy_inputs(model))["params"]

    tx, schedules = optim.make_optimizer(config.optim, jax.eval_shape(init), steps_per_epoch)

    def make_state(params):
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params),
            rng=jax.random.key_data(state_rng),
        )

    abstract = jax.eval_shape(lambda: make_state(init()))
    shardings = sharding.tree_shardings(
        abstract, mesh, config.sharding.fsdp, config.sharding.fsdp_min_size
    )
    abstract = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, shardings
    )
    return types.SimpleNamespace(
        model=model,
        tx=tx,
        schedules=schedules,
        shardings=shardings,
        abstract=abstract,
        init=init,
        make_state=make_state,
    )


def create_train_state(config, mesh, steps_per_epoch: int):
    """Model, optimiser and a sharded initial `TrainState` (imported weights where asked)."""
    sizes, loaded = pretrained(config)
    plan = plan_train_state(config, mesh, steps_per_epoch, sizes)
    shardings = plan.shardings
    params = jax.jit(plan.init, out_shardings=shardings.params)()
    if loaded is not None:
        params = merge_pretrained(
            jax.device_get(params), loaded, config.init.checkpoint
        )  # host-side merge, then placed with the same shardings
        params = jax.device_put(params, shardings.params)
    state = jax.jit(plan.make_state, out_shardings=shardings)(params)
    return plan.model, plan.tx, plan.schedules, state, shardings


def train_and_evaluate(config, workdir) -> dict:
    """Trains (and evaluates) as `config` says; returns the last evaluation's results."""
    config = resolve_data(config)
    config = protocols.resolve_config_lists(config)
    check_data_files(config)
    workdir = str(workdir)
    names = class_names(config)
    protocols.check_objective(config, names)  # a classifier cannot score unseen classes
    mesh = sharding.make_mesh()

    train_src = sources.open_source(
        config.data.train,
        split=config.data.train_split,
        root=config.data.root or None,
        labels=len(names),
        kind=config.data.kind or None,
        tfds_data_dir=config.data.tfds_data_dir or None,
    )
    global_batch = config.data.batch_size
    local_batch = local_batch_size(global_batch, "data.batch_size")
    if global_batch % config.optim.grad_accum:
        raise ValueError("data.batch_size must be a multiple of optim.grad_accum")
    steps_per_epoch = len(train_src) // global_batch
    if steps_per_epoch == 0:
        raise ValueError(
            f"{config.data.train} has {len(train_src)} videos, fewer than one global batch "
            f"({global_batch}); lower data.batch_size"
        )
    total_steps = int(config.optim.epochs * steps_per_epoch)
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)

    model, tx, schedules, state, state_shardings = create_train_state(config, mesh, steps_per_epoch)
    input_size = model.clip_sizes["image_resolution"]
    text_table = None  # a classifier trains without text
    if config.model.objective == "video_text":
        text_table = jax.device_put(
            prompts.prompt_tokens(
                names,
                prompts.resolve_templates(config.text.templates),
                model.clip_sizes["context_length"],
            ),
            sharding.replicated(mesh),
        )

    kwargs = train_data_kwargs(config, input_size)

    def make_iterator(epoch: int = 0):
        # A nominal epoch is steps_per_epoch global batches of the shuffled, repeated stream.
        return pipeline.make_train_iterator(
            train_src,
            batch_size=local_batch,
            start_position=epoch * steps_per_epoch * global_batch,
            **kwargs,
        )

    ckpt = checkpointing.Checkpointer(workdir, config)
    state, start_step, train_iter = ckpt.restore_or_keep(
        state, state_shardings, make_iterator(), make_iterator, steps_per_epoch
    )

    step_fn = jax.jit(
        functools.partial(
            train_step,
            model=model,
            tx=tx,
            data_cfg=config.data,
            grad_accum=config.optim.grad_accum,
        ),
        in_shardings=(state_shardings, sharding.batch_sharding(mesh), sharding.replicated(mesh)),
        out_shardings=(state_shardings, sharding.replicated(mesh)),
        donate_argnums=(0,),
    )
    writer = logs.MetricWriter(workdir)
    progress = logs.ProgressReport(total_steps, start_step)
    preemption = _Preemption()
    evaluator = evaluate.Evaluator(config, model, mesh, names)
    heldout = (
        evaluate.Evaluator(config, model, mesh, names, data=config.data.heldout)
        if config.data.heldout
        else None
    )
    results = {}
    window, t_window, bad_total = [], time.time(), 0
    try:
        for step in range(start_step, total_steps):
            batch = pipeline.to_global(next(train_iter), mesh)
            state, metrics = step_fn(state, batch, text_table)
            window.append(metrics)
            done = step + 1
            if done % config.log_every_steps == 0 or done == total_steps:
                host = jax.device_get(window)
                elapsed = time.time() - t_window
                bad_total += int(sum(m["bad_samples"] for m in host))
                scalars = {
                    "train/loss": np.mean([m["loss"] for m in host]),
                    "train/grad_norm": np.mean([m["grad_norm"] for m in host]),
                    "train/videos_per_second": len(host) * global_batch / max(elapsed, 1e-9),
                    "train/bad_samples_total": bad_total,
                }
                if "logit_scale" in host[-1]:
                    scalars["train/logit_scale"] = host[-1]["logit_scale"]
                scalars.update({f"lr/{g}": s(step) for g, s in schedules.items()})
                writer.write_scalars(done, scalars)
                window, t_window = [], time.time()
            progress(done, force=done == total_steps)
            epoch_end = done % steps_per_epoch == 0
            epoch = done // steps_per_epoch
            if (epoch_end and epoch % config.eval_every_epochs == 0) or done == total_steps:
                results = evaluator(state.params, done, writer, workdir)
                if heldout is not None and done == total_steps:
                    results["heldout"] = heldout(state.params, done, writer, workdir)
                if config.eval.splits and done == total_steps:  # a protocol's own passes
                    results["protocol"] = evaluate.evaluate_tasks(
                        config, model, mesh, state.params, done, writer, workdir
                    )
                ckpt.save(done, state, train_iter, metrics=results)
            elif done % config.checkpoint.every_steps == 0 or preemption.requested:
                ckpt.save(done, state, train_iter)
            if preemption.requested:
                break
    finally:
        preemption.restore()
        try:
            ckpt.close()  # waits for the last async save, which holds the iterator's state
            writer.close()
        finally:
            train_iter.close()  # stops its worker and decoder processes at once
    return results


def on_multihost_tpu() -> bool:
    """True on a TPU VM that is one worker of a multi-host slice (its metadata says so)."""
    import os  # pylint: disable=import-outside-toplevel

    return bool(os.environ.get("TPU_WORKER_HOSTNAMES", "").count(","))
