"""The run plan: a config resolved once, checked before anything heavy, and consumed by the loop
and by evaluation-only runs (which read parameters alone, the run's own before `init.checkpoint`).

In-process, on the tiny `configs/test.py` model, sharing the training tests' synthetic data folder
and compilation cache (train_helpers.py).
"""

import copy
import json
import subprocess
import sys

import jax
import numpy as np
import pytest
import train_helpers as h

import actionclip_jax
from actionclip_jax import checkpointing, evaluate, export, optim, predict, runs, sharding, train
from actionclip_jax import weights
from actionclip_jax import plan as plan_lib
from actionclip_jax.evals import evaluator, passes
from actionclip_jax.models import actionclip
from data_pipeline import sources

# The session's persistent compilation cache, shared with the runs' subprocesses.
pytestmark = pytest.mark.usefixtures("shared_compile_cache")

STEPS_PER_EPOCH = 3


@pytest.fixture(scope="module")
def config(basetemp):
    return h.make_test_config(basetemp)


def test_each_list_is_opened_and_parsed_once_per_plan(config, tmp_path, monkeypatch):
    opened, parsed = [], []
    open_source, parse = sources.open_source, sources.parse_list_file

    def counting_open(data, **kwargs):
        opened.append(str(data))
        return open_source(data, **kwargs)

    def counting_parse(path, **kwargs):
        parsed.append(str(path))
        return parse(path, **kwargs)

    monkeypatch.setattr(sources, "open_source", counting_open)
    monkeypatch.setattr(sources, "parse_list_file", counting_parse)
    cfg = copy.deepcopy(config)
    plan = plan_lib.make_plan(cfg, tmp_path)
    # train, val (shared by the periodic pass and the protocol's default pass), heldout.
    assert sorted(opened) == sorted([plan.config.data.train, plan.config.data.val,
                                     plan.config.data.heldout])  # fmt: skip
    assert sorted(parsed) == sorted(opened)
    assert plan.val is plan.protocol[0] and plan.heldout.name == "heldout"
    assert plan.final_tasks == (plan.heldout,)  # no eval.splits: the protocol is the val pass


def test_bad_values_fail_naming_the_field_before_data_is_generated(config, tmp_path, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the plan got past the value checks")

    monkeypatch.setattr(plan_lib, "resolve_data", must_not_run)
    cases = {
        "model.head": ("model", "head", "transformer"),
        "data.num_crops": ("data", "num_crops", 2),
        "optim.grad_accum": ("optim", "grad_accum", 3),  # does not divide the batch of 8
        "data.batch_size": ("data", "batch_size", 12),  # not a multiple of the 8 devices
        "text.templates": ("text", "templates", str(tmp_path / "none.txt")),
        "eval.protocol": ("eval", "protocol", "zero-shot"),
        "model.remat_policy": ("model", "remat_policy", "everything_saveable"),
        "model.attention_impl": ("model", "attention_impl", "cudnn"),  # no GPU here
    }
    for field, (section, name, value) in cases.items():
        cfg = copy.deepcopy(config)
        cfg[section][name] = value
        with pytest.raises(plan_lib.ConfigError, match=f"config field {field}"):
            plan_lib.make_plan(cfg, tmp_path)


def _train_two_steps(config, workdir):
    cfg = copy.deepcopy(config)
    cfg.max_steps = 2
    cfg.eval_every_epochs = 100  # no evaluation: the last step's is enough
    return train.train_and_evaluate(cfg, workdir)


@pytest.fixture(scope="module")
def trained(config, basetemp):
    """A run of two steps (its own checkpoint at step 2, evaluated once at the end)."""
    workdir = basetemp / "plan_trained"
    results = _train_two_steps(config, workdir)
    return workdir, results


def test_checkpoint_records_the_model_spec_and_what_the_run_scores_with(trained, config):
    workdir, results = trained
    step, meta = checkpointing.newest_readable_meta(workdir)
    assert step == 2 and meta["step"] == 2
    plan = plan_lib.make_plan(config, "/nonexistent")
    assert meta["model"] == json.loads(json.dumps(plan.spec))
    assert meta["run"]["class_names"] == list(plan.class_names)
    assert len(meta["run"]["templates"]) == 16 and meta["run"]["objective"] == "video_text"
    assert meta["metrics"]["top1"] == pytest.approx(results["top1"])
    # The parameters have an item of their own; the rest of the state another.
    params = h.load_params(workdir, 2)
    state = h.load_item(workdir, 2, "state")
    assert set(params) == {"clip", "fusion"} and set(state) == {"step", "opt_state", "rng"}


def _tensorboard_scalars(folder) -> dict:
    """`{tag: [(step, value), ...]}` of the event files in `folder` (TFRecord framing: length,
    its CRC, the serialised `Event`, its CRC)."""
    from tensorboardX.proto import event_pb2  # pylint: disable=import-outside-toplevel

    scalars = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            length = int.from_bytes(data[pos : pos + 8], "little")
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_training_logs_tflops_and_data_wait_and_no_mfu_on_a_cpu(trained):
    workdir, _ = trained
    scalars = _tensorboard_scalars(workdir / "tb")
    flops, wait = scalars["train/tflops_per_device"], scalars["train/data_wait_fraction"]
    assert [s for s, _ in flops] == [s for s, _ in wait] == [1, 2]  # every log line
    assert all(v > 0 for _, v in flops)
    assert all(0 <= v <= 1 for _, v in wait)
    assert "train/mfu" not in scalars  # a CPU has no peak rate in flops.PEAK_TFLOPS


def test_eval_mode_restores_parameters_alone_and_needs_no_init_file(
    trained, config, tmp_path, monkeypatch
):
    workdir, results = trained

    def no_optimizer(*args, **kwargs):
        raise AssertionError("evaluation built an optimiser")

    monkeypatch.setattr(optim, "make_optimizer", no_optimizer)
    cfg = copy.deepcopy(config)
    cfg.mode = "eval"
    cfg.init.checkpoint = str(tmp_path / "gone.pt")  # resumed first: never read, never needed
    again = evaluate.evaluate(cfg, workdir)
    assert again["checkpoint_step"] == 2
    for field in ("top1", "top5", "mean_class_acc", "num_videos"):
        assert again[field] == results[field], field

    # Without a checkpoint the init file is what would be evaluated: then it must exist.
    with pytest.raises(FileNotFoundError, match=r"init\.checkpoint: .*gone\.pt does not exist"):
        evaluate.evaluate(cfg, tmp_path / "fresh")


def test_resuming_with_another_model_names_the_differing_field(trained, config):
    workdir, _ = trained
    for section, name, value in (("model", "head", "meanP"), ("data", "num_frames", 2)):
        cfg = copy.deepcopy(config)
        cfg[section][name] = value
        with pytest.raises(plan_lib.ConfigError, match=rf"config field {section}\.{name}: the run"):
            plan_lib.make_plan(cfg, workdir)
    cfg = copy.deepcopy(config)
    cfg.model.clip.vision_width = 128
    with pytest.raises(plan_lib.ConfigError, match=r"model\.clip\.vision_width"):
        plan_lib.make_plan(cfg, workdir)


def test_evaluators_of_a_run_share_one_step_that_compiles_once_per_shape(config, tmp_path):
    plan = plan_lib.make_plan(config, tmp_path)
    mesh = sharding.make_mesh()
    [val], final = passes.make_evaluators(plan, mesh, [plan.val], plan.final_tasks)
    assert all(ev.step is val.step for ev in final)
    params = jax.jit(lambda r: actionclip.init_params(plan.model, r))(jax.random.key(0))
    for ev in (val, *final, val):  # val and heldout have the same shapes (36 classes)
        ev.run(params)
    assert val.step._cache_size() == 1  # pylint: disable=protected-access


def test_eval_metrics_are_clu_metrics_merged_over_batches():
    one = evaluator.EvalMetrics.single_from_model_output(
        hit1=np.array([1.0, 0.0]), hit5=np.array([1.0, 1.0]), mask=np.array([True, True]),
        label=np.array([0, 1]), pred=np.array([0, 0]), scores=np.zeros((2, 3)),
        half_hits=np.zeros((0, 2)), half_inside=np.zeros((0, 2)), bad=np.array([0, 1]),
    )  # fmt: skip
    two = one.merge(one)
    values = two.compute()
    assert float(values["top1"]) == 0.5 and float(values["top5"]) == 1.0
    assert int(values["bad"]) == 2
    np.testing.assert_array_equal(two.classes.count, [2, 2, 0])
    np.testing.assert_array_equal(two.classes.confusion, [[2, 0, 0], [2, 0, 0], [0, 0, 0]])
    assert float(values["classes"]) == pytest.approx(0.5)  # mean over the 2 classes with videos


def test_a_run_is_a_model_for_load_actionclip_and_predict(trained, config, tmp_path):
    workdir, _ = trained
    model, params = actionclip_jax.load_actionclip(workdir)
    want = h.load_params(workdir, 2)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)
    assert actionclip.spec_of(model) == json.loads(json.dumps(
        checkpointing.read_meta(workdir, 2)["model"]))  # fmt: skip
    run = runs.load_run(workdir, best=True)  # the only evaluated step
    assert run.step == 2 and len(run.class_names) == 36 and len(run.templates) == 16

    # The command: without --labels it ranks the run's own classes, as the run scores them.
    plan = plan_lib.make_plan(config, tmp_path / "unused")
    record = plan.val.source[0]
    out = tmp_path / "ranking.json"
    proc = subprocess.run(
        [sys.executable, "-m", "actionclip_jax.predict", f"--checkpoint={workdir}",
         f"--video={record['path']}", "--top=3", f"--json={out}"],
        capture_output=True, text=True, timeout=600, cwd=h.REPO, env=h.run_env(workdir.parent),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranking = json.loads(out.read_text())["ranking"]
    assert sorted(r["label"] for r in ranking) == sorted(run.class_names)
    frames = predict.test_frames(record["path"], model.num_frames,
                                 model.clip_sizes["image_resolution"])  # fmt: skip
    probs = predict.predict(model, params, frames, run.class_names,
                            objective=predict.run_objective(run))  # fmt: skip
    got = {r["label"]: r["probability"] for r in ranking}
    np.testing.assert_allclose([got[n] for n in run.class_names], probs, atol=1e-5)

    # Converted for hosts without the run: the directory records what the run scores with.
    converted = tmp_path / "converted"
    meta = weights.convert(workdir, converted)
    assert meta["source_kind"] == "run" and meta["step"] == 2
    assert weights.recorded_run(converted) == meta["run"] == run.meta["run"]
    again_model, again = actionclip_jax.load_actionclip(converted)
    assert again_model.num_frames == model.num_frames and again_model.head == model.head
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_run_exports_to_the_original_pytorch_code_with_the_same_features(trained, tmp_path):
    torch = pytest.importorskip("torch")
    import reference  # pylint: disable=import-outside-toplevel
    import reference_actionclip as ra  # pylint: disable=import-outside-toplevel

    workdir, _ = trained
    model, params = actionclip_jax.load_actionclip(workdir)
    assert (model.head, model.head_layers, model.frame_stage) == ("transf", 2, "shift")
    export.export_actionclip_pt(workdir, tmp_path / "run.pt")
    ckpt = torch.load(tmp_path / "run.pt", weights_only=True)
    # Loaded as the original's train.py/test.py do, strictly: its head has 6 blocks (4 identity).
    sizes = {k: model.clip_sizes[k] for k in reference.SMALL}
    clip = ra.make_shift_clip(sizes, T=model.num_frames, seed=0)
    clip.load_state_dict(ckpt["model_state_dict"])
    fusion = torch.nn.DataParallel(ra.VisualPrompt("Transf", clip.state_dict(), model.num_frames))
    fusion.load_state_dict(ckpt["fusion_model_state_dict"])
    original = ra.ActionCLIPReference(clip, fusion.module.eval(), model.num_frames).eval()
    r = model.clip_sizes["image_resolution"]
    video = np.random.RandomState(0).randn(2, model.num_frames, r, r, 3).astype(np.float32)
    ours = model.apply({"params": params}, video, method=model.encode_video)
    with torch.no_grad():
        theirs = original.encode_video(torch.from_numpy(video.transpose(0, 1, 4, 2, 3).copy()))
    assert reference.rel_err(ours, theirs.numpy()) <= 1e-4
