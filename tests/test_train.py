"""The training loop: schedules, parameter groups, sharding, evaluation counting, checkpoints.

In-process tests use the tiny `configs/test.py` model on the 8 simulated CPU devices that
conftest.py sets up. The end-to-end tests run `python -m actionclip_jax.main` (through
`tests/run_main.py`, which records the indices of every training batch) in subprocesses and
compare their orbax checkpoints leaf by leaf. All of them share one synthetic data folder and one
persistent compilation cache (see train_helpers.py).
"""

import copy
import functools
import logging
import math
import os
import re
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import train_helpers as h
from jax.sharding import Mesh

from actionclip_jax import checkpointing, evaluate, flops, optim, sharding, train
from actionclip_jax import plan as plan_lib
from actionclip_jax.evals import passes
from actionclip_jax.models import actionclip
from data_pipeline import pipeline, sources

# The session's persistent compilation cache, shared with the runs' subprocesses.
pytestmark = pytest.mark.usefixtures("shared_compile_cache")

STEPS_PER_EPOCH = 3  # the test config: 30 training videos, global batch 8


@pytest.fixture(scope="module")
def config(basetemp):
    return h.make_test_config(basetemp)


@pytest.fixture(scope="module")
def setup(config, tmp_path_factory):
    """The test run's plan and initial state on the 8-device mesh, its text table and source."""
    mesh = sharding.make_mesh()
    plan = plan_lib.make_plan(config, tmp_path_factory.mktemp("train_plan"))
    state_plan = train.plan_train_state(plan, mesh, STEPS_PER_EPOCH)
    return SimpleNamespace(
        mesh=mesh,
        plan=plan,
        model=plan.model,
        state_plan=state_plan,
        state=train.initial_state(plan, state_plan),
        shardings=state_plan.shardings,
        names=plan.class_names,
        table=plan.objective.train_context(plan.class_names)["text_table"],
        source=plan.train_source,
    )


def _train_iterator(config, source, epoch=0, workers=0):
    """The training stream exactly as `train_and_evaluate` builds it (one process)."""
    kwargs = train.train_data_kwargs(config, config.model.clip.image_resolution)
    kwargs["worker_count"] = workers
    return pipeline.make_train_iterator(
        source,
        batch_size=config.data.batch_size,
        start_position=epoch * STEPS_PER_EPOCH * config.data.batch_size,
        **kwargs,
    )


def _copy(tree, shardings):
    """Fresh buffers (a donated copy must not take the original's buffers with it)."""
    return jax.device_put(jax.device_get(tree), shardings)


def _host(tree):
    return jax.tree.map(np.asarray, jax.device_get(tree))


def _assert_trees_equal(a, b):
    la, lb = jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for (path, x), y in zip(la, lb):
        assert x.dtype == y.dtype and x.shape == y.shape, jax.tree_util.keystr(path)
        np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


# ------------------------------------------------------------------------- failing early


def test_absent_data_file_fails_at_once_naming_it_and_make_lists(basetemp, tmp_path, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the run got past the data check")

    monkeypatch.setattr(train, "plan_train_state", must_not_run)
    monkeypatch.setattr(sources, "open_source", must_not_run)
    monkeypatch.chdir(tmp_path)  # k400_b16's relative data/k400/*.txt: absent here
    h.make_test_config(basetemp)  # puts the repository on sys.path for `configs`
    from configs import k400_b16  # pylint: disable=import-outside-toplevel

    cases = [(k400_b16.get_config(), "data/k400/val.txt")]
    missing = tmp_path / "lists" / "train.txt"
    cfg = h.make_test_config(basetemp)
    cfg.data.synthetic.enabled = False
    cfg.data.train = str(missing)
    cases.append((cfg, str(missing)))
    for config, path in cases:
        workdir = tmp_path / "workdir"
        with pytest.raises(FileNotFoundError) as e:
            train.train_and_evaluate(config, workdir)
        assert path in str(e.value) and "data_pipeline.make_lists" in str(e.value)
        assert not workdir.exists()  # nothing was started: no checkpoints, no metrics
    # mode=eval checks the same way.
    cfg = copy.deepcopy(cfg)
    cfg.data.val = str(tmp_path / "lists" / "val.txt")
    with pytest.raises(FileNotFoundError, match="lists/val.txt.*data_pipeline.make_lists"):
        evaluate.evaluate(cfg, tmp_path / "workdir")


# --------------------------------------------------------------------- learning rates


def _original_lr(base, epoch, warmup=5, epochs=50):
    """The original's per-epoch formula (fractional epochs)."""
    if epoch < warmup:
        return base * epoch / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / (epochs - warmup)))


def test_lr_schedule_warmup_peak_and_end_match_original_formula(basetemp):
    h.make_test_config(basetemp)  # puts the repository on sys.path for `configs`
    from configs import base as base_config  # pylint: disable=import-outside-toplevel

    cfg = ml_collections.ConfigDict(base_config.get_config().optim.to_dict())
    cfg.lr, cfg.visual_ratio, cfg.fusion_ratio = 5e-6, 0.5, 10.0  # three distinct group rates
    assert (cfg.epochs, cfg.warmup_epochs) == (50, 5)  # the original's schedule
    spe = 100
    params = {
        "clip": {
            "visual": {"w": jnp.zeros(3)},
            "transformer": {"w": jnp.zeros(3)},
            "logit_scale": jnp.zeros(()),
        },
        "fusion": {"w": jnp.zeros(3)},
    }
    tx, schedules = optim.make_optimizer(cfg, params, spe)
    base = {"text": 5e-6, "visual": 2.5e-6, "fusion": 5e-5}
    assert set(schedules) == set(base)
    steps = [0, 1, 137, 250, 499, 500, 501, 1000, 2750, 4900, 4999, 5000]
    for group, lr in base.items():
        for s in steps:
            got = float(schedules[group](s))
            want = _original_lr(lr, s / spe)
            # fp32 (and optax's 'peak - peak·(1 - s/warm-up)' in warm-up): 1e-5 of the peak.
            assert got == pytest.approx(want, rel=1e-5, abs=1e-5 * lr), (group, s)
        assert float(schedules[group](0)) == 0.0  # warm-up starts from 0
        assert float(schedules[group](5 * spe)) == pytest.approx(lr, rel=1e-6)  # peak
        assert float(schedules[group](50 * spe)) == pytest.approx(0.0, abs=1e-15)  # end

    # The optimiser applies each group's schedule: one Adam step on zero parameters with unit
    # gradients moves every parameter by -lr(step) (bias-corrected Adam gives 1, no decay at 0).
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)

    def at_step(x, s):
        if isinstance(x, optax.ScaleByScheduleState):
            return x._replace(count=jnp.asarray(s, x.count.dtype))
        return x

    for s in (250, 500, 2750):
        at_s = jax.tree.map(
            functools.partial(at_step, s=s),
            state,
            is_leaf=lambda x: isinstance(x, optax.ScaleByScheduleState),
        )
        updates, _ = tx.update(grads, at_s, params)
        want = {g: -_original_lr(lr, s / spe) for g, lr in base.items()}
        np.testing.assert_allclose(updates["clip"]["visual"]["w"], want["visual"], rtol=1e-4)
        np.testing.assert_allclose(updates["clip"]["transformer"]["w"], want["text"], rtol=1e-4)
        np.testing.assert_allclose(updates["clip"]["logit_scale"], want["text"], rtol=1e-4)
        np.testing.assert_allclose(updates["fusion"]["w"], want["fusion"], rtol=1e-4)


# ------------------------------------------------------------------------ parameter groups


def _abstract_params(config):
    return actionclip.abstract_params(plan_lib.make_plan(config, "/nonexistent/workdir").model)


def _labels_by_path(params, freeze=""):
    paths = jax.tree.leaves(optim.param_paths(params))
    return dict(zip(paths, jax.tree.leaves(optim.group_labels(params, freeze)), strict=True))


def test_param_groups_visual_fusion_text_and_frozen_params_stay_unchanged(config):
    params = _abstract_params(config)
    labels = _labels_by_path(params)
    for path, group in labels.items():
        if path.startswith("clip/visual/"):
            assert group == "visual", path
        elif path.startswith("fusion/"):
            assert group == "fusion", path
        else:
            assert path.startswith("clip/") and group == "text", (path, group)
    text = {p for p, g in labels.items() if g == "text"}
    for p in ("clip/logit_scale", "clip/token_embedding/embedding", "clip/positional_embedding",
              "clip/text_projection", "clip/ln_final/scale"):  # fmt: skip
        assert p in text
    assert any(p.startswith("clip/transformer/") for p in text)
    assert sum(g == "visual" for g in labels.values()) >= 10
    assert sum(g == "fusion" for g in labels.values()) >= 10

    freeze = "clip/visual/.*|clip/logit_scale"
    frozen_labels = _labels_by_path(params, freeze)
    for path, group in frozen_labels.items():
        if re.fullmatch(freeze, path):
            assert group == "frozen", path
        else:
            assert group == labels[path], path

    # One optimiser step (peak learning rate, weight decay on) leaves exactly the frozen ones.
    optim_cfg = copy.deepcopy(config.optim)
    optim_cfg.freeze, optim_cfg.warmup_epochs, optim_cfg.lr = freeze, 0, 1e-3
    values = jax.tree.map(lambda s: jnp.full(s.shape, 0.5, s.dtype), params)
    grads = jax.tree.map(lambda s: jnp.full(s.shape, 0.1, s.dtype), params)
    tx, _ = optim.make_optimizer(optim_cfg, params, STEPS_PER_EPOCH)

    @jax.jit
    def step(values, grads):
        updates, _ = tx.update(grads, tx.init(values), values)
        return optax.apply_updates(values, updates)

    new = step(values, grads)
    flat_new = dict(zip(jax.tree.leaves(optim.param_paths(params)), jax.tree.leaves(new)))
    for path, x in flat_new.items():
        if frozen_labels[path] == "frozen":
            np.testing.assert_array_equal(x, 0.5, err_msg=path)
        else:
            assert np.all(np.asarray(x) < 0.5), path


def test_lr_mults_scale_matching_parameters_within_their_group_and_reject_bad_regexes(config):
    params = _abstract_params(config)
    optim_cfg = copy.deepcopy(config.optim)
    optim_cfg.lr, optim_cfg.warmup_epochs, optim_cfg.weight_decay = 1e-3, 0, 0.0
    optim_cfg.visual_ratio, optim_cfg.fusion_ratio = 0.5, 10.0
    optim_cfg.lr_mults = (
        ("clip/visual/positional_embedding", 30.0),
        (".*frame_position_embeddings/.*", 3.0),
        ("clip/visual/.*embedding", 7.0),  # later pairs do not override earlier matches
    )
    labels = dict(
        zip(
            jax.tree.leaves(optim.param_paths(params)),
            jax.tree.leaves(optim.group_labels(params, "", optim_cfg.lr_mults)),
            strict=True,
        )
    )
    assert labels["clip/visual/positional_embedding"] == "visual_x30"
    assert labels["fusion/frame_position_embeddings/embedding"] == "fusion_x3"
    assert labels["clip/visual/class_embedding"] == "visual_x7"
    assert labels["clip/positional_embedding"] == "text"  # the text tower's table: no match
    assert labels["clip/visual/conv1/kernel"] == "visual"

    tx, schedules = optim.make_optimizer(optim_cfg, params, STEPS_PER_EPOCH)
    want = {"text": 1e-3, "visual": 5e-4, "fusion": 1e-2, "visual_x30": 1.5e-2,
            "fusion_x3": 3e-2, "visual_x7": 3.5e-3}  # fmt: skip
    assert {g: float(s(0)) for g, s in schedules.items()} == pytest.approx(want)
    # One Adam step from zero state with equal gradients moves each parameter by its group's lr.
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)
    grads = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), params)
    updates, _ = jax.jit(lambda g, p: tx.update(g, tx.init(p), p))(grads, zeros)
    for path, u in zip(jax.tree.leaves(optim.param_paths(params)), jax.tree.leaves(updates)):
        np.testing.assert_allclose(u, -want[labels[path]], rtol=1e-5, err_msg=path)

    optim_cfg.lr_mults = (("clip/visual/position_embedding", 30.0),)  # a typo: no such table
    with pytest.raises(ValueError, match="position_embedding.*matches no parameter"):
        optim.make_optimizer(optim_cfg, params, STEPS_PER_EPOCH)
    optim_cfg.lr_mults = (("clip/visual/positional_embedding", -1.0),)
    with pytest.raises(ValueError, match="multiplier > 0"):
        optim.make_optimizer(optim_cfg, params, STEPS_PER_EPOCH)


# ---------------------------------------------------------------------------- sharding


def _step_fn(setup, mesh, shardings):
    """The loop's jitted train step (train_and_evaluate's in/out shardings and donation)."""
    state_plan = SimpleNamespace(tx=setup.state_plan.tx, shardings=shardings)
    return train.jit_train_step(setup.plan, state_plan, mesh)


def test_one_step_loss_agrees_on_1_and_8_devices_and_with_rows_permuted(config, setup):
    batch = next(_train_iterator(config, setup.source))
    # The 8-device step gets the rows in another order: every per-sample draw (colour jitter,
    # grayscale, prompt template) is keyed by the sample's dataset index, not by its row.
    permuted = {k: v[::-1] for k, v in batch.items()}
    out = {}
    for n, rows in ((1, batch), (8, permuted)):
        mesh = Mesh(np.array(jax.devices()[:n]), (sharding.DATA,))
        shardings = sharding.tree_shardings(setup.state, mesh, False, 0)
        state = _copy(setup.state, shardings)
        context = jax.device_put({"text_table": setup.table}, sharding.replicated(mesh))
        new_state, metrics = _step_fn(setup, mesh, shardings)(
            state, pipeline.to_global(rows, mesh), context
        )
        assert len(new_state.params["clip"]["logit_scale"].sharding.device_set) == n
        out[n] = _host((metrics, new_state.opt_state))
    (m1, opt1), (m8, opt8) = out[1], out[8]
    assert np.isfinite(m1["loss"]) and m1["loss"] > 0
    np.testing.assert_allclose(m8["loss"], m1["loss"], rtol=1e-5)
    np.testing.assert_allclose(m8["grad_norm"], m1["grad_norm"], rtol=1e-4)
    # The gradients themselves (Adam's first moment after one step is 0.1 x gradient).
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(opt1), jax.tree.leaves(opt8)):
        if "mu" in jax.tree_util.keystr(path):
            # Summation order differs: elements that are sums of cancelling terms get an
            # absolute tolerance on the scale of the leaf.
            np.testing.assert_allclose(
                b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max(), err_msg=jax.tree_util.keystr(path)
            )


def test_model_flops_leave_out_remat_recomputation_and_count_every_micro_batch(setup):
    mesh, b = setup.mesh, 8
    rng = np.random.default_rng(0)
    batch = pipeline.to_global({
        "video": rng.integers(0, 256, (b, 4, 32, 32, 3), dtype=np.uint8),
        "label": rng.integers(0, len(setup.names), b).astype(np.int32),
        "index": np.arange(b), "mask": np.ones(b, bool), "bad": np.zeros(b, np.int32),
    }, mesh)  # fmt: skip
    context = jax.device_put({"text_table": setup.table}, sharding.replicated(mesh))

    def counted(section, field, value):
        config = copy.deepcopy(setup.plan.config)
        config[section][field] = value
        plan = plan_lib.model_plan(config, setup.names)
        state_plan = train.plan_train_state(plan, mesh, STEPS_PER_EPOCH)
        args = (state_plan.abstract, batch, context)
        lowered = train.jit_train_step(plan, state_plan, mesh).lower(*args)
        return flops.lowered_flops(lowered, mesh.size), train.model_flops(plan, mesh, *args,
                                                                          lowered)  # fmt: skip

    xla, model = counted("model", "remat", False)
    assert xla == model > 0
    xla_remat, model_remat = counted("model", "remat", True)
    assert xla_remat > 1.1 * model and model_remat == model  # recomputation is not model work
    xla_accum, model_accum = counted("optim", "grad_accum", 2)
    assert xla_accum < 0.75 * model and model_accum == model  # XLA counts a loop's body once


def test_fsdp_puts_about_an_eighth_of_params_and_optimizer_state_on_each_device(basetemp):
    min_size = 4096
    config = h.make_test_config(basetemp, sharding__fsdp=True, sharding__fsdp_min_size=min_size)
    mesh = sharding.make_mesh()
    plan = plan_lib.make_plan(config, basetemp / "fsdp_plan")
    state = train.initial_state(plan, train.plan_train_state(plan, mesh, STEPS_PER_EPOCH))
    devices = set(jax.devices())
    assert len(devices) == 8
    for tree in (state.params, state.opt_state):
        leaves = [x for x in jax.tree.leaves(tree) if x.ndim]
        total = sum(x.nbytes for x in leaves)
        small = sum(x.nbytes for x in leaves if x.size < min_size)
        per_device = dict.fromkeys(devices, 0)
        for x in leaves:
            shards = x.addressable_shards
            assert {s.device for s in shards} == devices
            if x.size >= min_size and any(d % 8 == 0 for d in x.shape):
                # A large leaf is split in 8 distinct pieces, one per device.
                assert all(s.data.nbytes * 8 == x.nbytes for s in shards), x.shape
                assert len({str(s.index) for s in shards}) == 8
            for s in shards:
                per_device[s.device] += s.data.nbytes
        # Each device holds an eighth of the sharded leaves and all of the small replicated
        # ones, which are about 1% of the bytes: about an eighth of the whole.
        assert small < 0.02 * total
        for nbytes in per_device.values():
            assert nbytes == (total - small) // 8 + small
            assert nbytes < 1.1 * total / 8


# -------------------------------------------------------------------------- evaluation


def test_eval_counts_every_video_once_with_ragged_last_batch(config, setup, tmp_path):
    val = setup.plan.val.source
    labels = np.array([val[i]["label"] for i in range(len(val))])
    assert len(labels) == 30 and config.data.eval_batch_size == 8  # 3 full batches + 6
    for drop_last, expected in ((False, 30), (True, 24)):
        cfg = copy.deepcopy(config)
        cfg.data.drop_last_eval = drop_last
        plan = plan_lib.make_plan(cfg, tmp_path / str(drop_last))
        [[evaluator]] = passes.make_evaluators(plan, setup.mesh, [plan.val])
        results, counts = evaluator.run(setup.state.params)
        assert results["num_videos"] == expected
        assert results["drop_last"] is drop_last
        # Each counted video exactly once: the per-class counts are the labels' histogram
        # (with drop_last: of the first 24 videos in list order).
        np.testing.assert_array_equal(
            counts["class_count"], np.bincount(labels[:expected], minlength=len(setup.names))
        )
        assert counts["confusion"].sum() == expected
        assert 0.0 <= results["top1"] <= results["top5"] <= 1.0
        assert 0.0 <= results["mean_class_acc"] <= 1.0


# ------------------------------------------------------------------------- checkpoints


def test_resume_with_other_worker_count_restores_state_and_restarts_epoch_with_warning(
    config, setup, tmp_path, caplog
):
    stream = _train_iterator(config, setup.source)
    reference = [next(stream)["index"].tolist() for _ in range(5)]
    step = 4  # one step into epoch 1
    it = _train_iterator(config, setup.source)
    for _ in range(step):
        next(it)
    saved = _host(setup.state)
    ckpt = checkpointing.Checkpointer(tmp_path, config, setup.plan.spec)
    ckpt.save(step, setup.state, it, counters={"bad_samples_total": 5})
    ckpt.close()
    # What a fresh run would start from (the Checkpointer reads only shapes and dtypes).
    blank = jax.eval_shape(lambda s: s, setup.state)

    # Same layout: exact resume of model, optimiser, data position and counters.
    ckpt = checkpointing.Checkpointer(tmp_path, config, setup.plan.spec)
    state, got_step, it, counters = ckpt.restore_or_keep(
        step,
        blank,
        setup.shardings,
        functools.partial(_train_iterator, config, setup.source),
        STEPS_PER_EPOCH,
    )
    ckpt.close()
    assert counters == {"bad_samples_total": 5}
    assert got_step == step
    _assert_trees_equal(_host(state), saved)
    assert next(it)["index"].tolist() == reference[step]

    # Another worker count (the Checkpointer treats it like another process count): model and
    # optimiser restored, data restarted at the start of the current epoch, and a warning. (The
    # Checkpointer decides from the config; the iterators here decode in this process, which
    # gives the same batches as worker processes would; test_multihost resumes for real.)
    other = copy.deepcopy(config)
    other.data.workers = 1
    ckpt = checkpointing.Checkpointer(tmp_path, other, setup.plan.spec)
    with caplog.at_level(logging.WARNING):
        state, got_step, it, _ = ckpt.restore_or_keep(
            step,
            blank,
            setup.shardings,
            functools.partial(_train_iterator, other, setup.source),
            STEPS_PER_EPOCH,
        )
    ckpt.close()
    assert got_step == step
    _assert_trees_equal(_host(state), saved)
    for leaf, s in zip(jax.tree.leaves(state), jax.tree.leaves(setup.shardings)):
        assert leaf.sharding == s
    epoch_start = (step // STEPS_PER_EPOCH) * STEPS_PER_EPOCH
    assert next(it)["index"].tolist() == reference[epoch_start]
    warning = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "data order restarts at the start of epoch 1" in warning
    assert "'workers': 0" in warning and "'workers': 1" in warning


@pytest.mark.slow
def test_run_with_grain_worker_processes_frees_their_shared_memory(basetemp):
    # With two or more workers grain hands batches over in shared memory; a batch still
    # referenced from a garbage cycle at exit (the last training batch, each eval worker's
    # last batch) is reported by Python's resource tracker as leaked.
    workdir = h.session_dirs(basetemp)["runs"] / "two_workers"
    log = h.run(basetemp, workdir, "--config.max_steps=1", "--config.data.workers=2")
    assert "eval/top1=" in log and "eval/heldout/top1=" in log  # trained, evaluated both sets
    assert "leaked shared_memory" not in log, log[-3000:]


def _grain_workers(proc) -> list[int]:
    """The run's grain worker processes (multiprocessing children; not its resource tracker,
    not the workers' decoder processes)."""
    return [p for p in h.group_members(proc.pid)
            if p != proc.pid and "spawn_main" in h.cmdline(p)]  # fmt: skip


@pytest.mark.slow  # three runs of 12 steps
def test_a_killed_grain_worker_stops_the_run_with_its_steps_saved_and_the_resume_matches(basetemp):
    # The kernel's out-of-memory killer picks the biggest process, often a decoding worker. The run
    # must not hang or lose its steps: it saves what it trained, says what happened and what to
    # do as its last line, and the resumed run ends where an uninterrupted one does.
    runs = h.session_dirs(basetemp)["runs"]
    # 12 steps, evaluated at the end. When the worker dies, up to 5 batches it made are still on
    # their way (its queue, grain's thread buffer, the one in its reading thread): 12 steps leave
    # the run at least 4 steps in which to find it dead.
    overrides = (
        "--config.data.workers=1",
        "--config.optim.epochs=4",
        "--config.eval_every_epochs=4",
    )
    reference = runs / "one_worker_12_steps"
    h.run(basetemp, reference, *overrides)
    workdir = runs / "worker_killed"
    record = f"{workdir}.batches.jsonl"
    proc = h.start(basetemp, workdir, *overrides, log=f"{workdir}.1.log", record=record)
    killed = []  # the worker's pid, once killed
    try:
        deadline = time.time() + h.RUN_TIMEOUT
        while not killed and proc.poll() is None and time.time() < deadline:
            if Path(record).exists() and Path(record).read_text().count("\n") >= 2:
                killed = _grain_workers(proc)[:1]  # the run's only worker
                for pid in killed:
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)
        rc = h.finish(proc)
    finally:
        h.reap(proc)
    log = Path(f"{workdir}.1.log").read_text(errors="replace")
    assert killed, log[-3000:]
    assert rc == 1, log[-3000:]
    saved = h.complete_steps(workdir)[-1]
    assert 2 <= saved < 12, saved  # it had been fed 2 batches when its worker died
    last = log.strip().splitlines()[-1]
    assert last.startswith("actionclip_jax: error: a grain worker process of the training data "
                           "was killed by SIGKILL"), last  # fmt: skip
    assert f"checkpoint step {saved}" in last and last.endswith(
        "rerun the same command to resume from there"
    ), last
    assert "Traceback" not in log

    resumed = h.run(basetemp, workdir, *overrides, log=f"{workdir}.2.log")
    assert f"resumed from step {saved}" in resumed
    _assert_trees_equal(h.load_state(workdir, 12), h.load_state(reference, 12))
    assert h.eval_results(workdir)["top1"] == h.eval_results(reference)["top1"]


# ----------------------------------------------------- end to end: kill, resume, evaluate


def _kill_mid_save_of_step_3(basetemp, workdir):
    """Runs the reference config and SIGKILLs it while step 3's async save is in flight."""
    seen = {}

    def saving_step_3():
        if any(n.startswith("3.") for n in h.tmp_checkpoints(workdir)):
            members = h.group_members(proc.pid)
            seen["members"] = [h.cmdline(p) for p in members if p != proc.pid]
            return True
        return False

    proc = h.start(
        basetemp,
        workdir,
        *h.REFERENCE_OVERRIDES,
        log=str(workdir) + ".1.log",
        record=str(workdir) + ".1.batches.jsonl",
    )
    try:
        killed = h.kill_when(proc, saving_step_3)
    finally:
        h.reap(proc)
    return killed, seen.get("members", [])


@pytest.fixture(scope="module")
def killed_and_resumed(basetemp):
    """Reference run; the same run killed mid-save of step 3, resumed, then `mode=eval`."""
    reference = h.reference_run(basetemp)
    for attempt in range(2):  # the save takes seconds here; a miss means a very late poll
        workdir = h.session_dirs(basetemp)["runs"] / f"killed_{attempt}"
        killed, workers = _kill_mid_save_of_step_3(basetemp, workdir)
        if killed:
            break
    else:
        pytest.fail("the run finished before the poll saw step 3's save in flight (twice)")
    after_kill = SimpleNamespace(
        complete=h.complete_steps(workdir),
        tmp=h.tmp_checkpoints(workdir),
        workers=workers,
    )
    resume_log = h.run(
        basetemp,
        workdir,
        *h.REFERENCE_OVERRIDES,
        log=str(workdir) + ".2.log",
        record=str(workdir) + ".2.batches.jsonl",
    )
    resumed_results = h.eval_results(workdir)
    eval_log = h.run(
        basetemp,
        workdir,
        *h.REFERENCE_OVERRIDES,
        "--config.mode=eval",
        log=str(workdir) + ".3.log",
    )
    return SimpleNamespace(
        reference=reference,
        workdir=workdir,
        after_kill=after_kill,
        resume_log=resume_log,
        resumed_results=resumed_results,
        eval_log=eval_log,
        eval_results=h.eval_results(workdir),
    )


def _check_results(results, step):
    for field in ("top1", "top5", "mean_class_acc", "num_videos", "views", "checkpoint_step"):
        assert field in results, field
    for field in ("top1", "top5", "mean_class_acc"):
        assert 0.0 <= results[field] <= 1.0, field
    assert results["top1"] <= results["top5"]
    assert results["num_videos"] == 30 and results["views"] == 1
    assert results["checkpoint_step"] == step


@pytest.mark.slow
def test_end_to_end_train_checkpoint_resume_eval(killed_and_resumed):
    run = killed_and_resumed
    assert run.after_kill.complete == [2]  # trained two steps and checkpointed them
    assert "resumed from step 2" in run.resume_log
    assert h.complete_steps(run.workdir)[-1] == 3
    _check_results(run.resumed_results, step=3)
    assert (run.workdir / "eval_results_heldout.json").exists()
    _check_results(run.eval_results, step=3)  # mode=eval of the latest checkpoint
    for field in ("top1", "top5", "mean_class_acc", "num_videos"):
        assert run.eval_results[field] == run.resumed_results[field], field
    assert (run.workdir / "tb").is_dir()


@pytest.mark.slow
def test_sigkill_mid_async_save_with_grain_workers_resumes_bit_exact(killed_and_resumed):
    run = killed_and_resumed
    # The kill landed mid-save: step 3's temporary directory was left behind, with a grain
    # worker process alive.
    assert run.after_kill.complete == [2]
    assert any(n.startswith("3.") for n in run.after_kill.tmp)
    assert any("spawn_main" in c for c in run.after_kill.workers), run.after_kill.workers
    # The resumed run cleaned it up and ends exactly where the uninterrupted one does.
    assert h.tmp_checkpoints(run.workdir) == []
    assert h.complete_steps(run.reference) == h.complete_steps(run.workdir) == [2, 3]
    _assert_trees_equal(h.load_state(run.workdir, 3), h.load_state(run.reference, 3))
    data = "checkpoints/3/data/process_0-of-1.json"
    assert (run.workdir / data).read_text() == (run.reference / data).read_text()
    # Same batches, in the same order: steps 1-3 before the kill (step 3's save never
    # completed), step 3 again after it.
    first = h.records(str(run.workdir) + ".1.batches.jsonl")
    second = h.records(str(run.workdir) + ".2.batches.jsonl")
    reference = h.records(str(run.reference) + ".batches.jsonl")
    assert len(reference) == 3 and first == reference and second == reference[2:]
