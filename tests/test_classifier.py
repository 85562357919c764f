"""The unimodal baseline (`model.objective=classifier`): the video encoder, a 1-of-N linear layer
and cross-entropy, with no text tower; its import, optimiser group, training, evaluation and the
protocols it must refuse.

In-process, on the tiny `configs/test.py` model and the 8 simulated CPU devices of conftest.py,
sharing the training tests' synthetic data folder and compilation cache (train_helpers.py).
"""

import copy
import functools
import json
import logging
from types import SimpleNamespace

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import train_helpers as h

from actionclip_jax import evaluate, losses, optim, sharding, train, weights
from actionclip_jax import plan as plan_lib
from actionclip_jax.evals import protocols, reports
from actionclip_jax.models import actionclip
from actionclip_jax.models.actionclip import ActionCLIP
from actionclip_jax.evals import evaluator
from actionclip_jax.objectives import classifier
from data_pipeline import pipeline

# The session's persistent compilation cache, shared with the runs' subprocesses.
pytestmark = pytest.mark.usefixtures("shared_compile_cache")

NUM_CLASSES = 36  # the synthetic demo's classes
STEPS_PER_EPOCH = 3  # the test config: 30 training videos, global batch 8


@pytest.fixture(scope="module")
def config(basetemp):
    # No warm-up: the first steps already learn (and the end-to-end run then compiles the same
    # train step as the fixed-batch test, a hit in the shared compilation cache).
    return h.make_test_config(
        basetemp, model__objective="classifier", optim__warmup_epochs=0, optim__lr=1e-3
    )


@pytest.fixture(scope="module")
def setup(config, tmp_path_factory):
    """The classifier's run plan and initial train state on the 8-device mesh (the loop's own
    `initial_state`, whose compiled init the end-to-end run reuses from the compilation cache)."""
    mesh = sharding.make_mesh()
    plan = plan_lib.make_plan(config, tmp_path_factory.mktemp("classifier_plan"))
    state_plan = train.plan_train_state(plan, mesh, STEPS_PER_EPOCH)
    state = train.initial_state(plan, state_plan)
    return SimpleNamespace(
        mesh=mesh, plan=plan, model=plan.model, state_plan=state_plan, state=state
    )


def _abstract_params(model):
    return actionclip.abstract_params(model)


def _paths(params):
    return jax.tree.leaves(optim.param_paths(params))


# ------------------------------------------------------------------------------------ model


def test_classifier_forward_shape_and_no_text_parameters(setup):
    model, params = setup.model, setup.state.params
    assert (model.with_text, model.num_classes) == (False, NUM_CLASSES)
    r, e = model.clip_sizes["image_resolution"], model.clip_sizes["embed_dim"]
    paths = _paths(params)
    assert set(params) == {"clip", "fusion", "classifier"}
    assert set(params["clip"]) == {"visual"}  # no text tower, no logit scale
    assert not any("logit_scale" in p or "token_embedding" in p for p in paths)
    assert params["classifier"]["kernel"].shape == (e, NUM_CLASSES)
    assert params["classifier"]["bias"].shape == (NUM_CLASSES,)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))

    video = np.random.default_rng(0).normal(size=(2, model.num_frames, r, r, 3)).astype("f4")

    @jax.jit
    def forward(params, video):
        return model.apply({"params": params}, video), model.apply(
            {"params": params}, video, method=model.encode_video
        )

    (logits, out), v = forward(params, video)
    assert logits.shape == (2, NUM_CLASSES) and out["video"].shape == (2, e)
    # The layer reads the un-normalised feature of the shared `encode_video`.
    np.testing.assert_allclose(out["video"], v, rtol=1e-6)
    k = params["classifier"]
    np.testing.assert_allclose(logits, v @ k["kernel"] + k["bias"], rtol=1e-5, atol=1e-5)
    assert float(jnp.linalg.norm(v[0])) != pytest.approx(1.0, abs=1e-3)


def test_classifier_arguments_are_checked(config, tmp_path):
    clip = config.model.clip.to_dict()
    video = jnp.zeros((1, 8, clip["image_resolution"], clip["image_resolution"], 3))
    init = lambda m, *a: jax.eval_shape(lambda: m.init(jax.random.key(0), *a))
    with pytest.raises(ValueError, match="num_classes > 0"):
        init(ActionCLIP(clip, 8, head="meanP", with_text=False), video)
    cfg = copy.deepcopy(config)
    cfg.model.objective = "linear"
    with pytest.raises(plan_lib.ConfigError, match=r"model\.objective: 'linear' is not one of"):
        plan_lib.make_plan(cfg, tmp_path)
    model = ActionCLIP(clip, 8, head="meanP", with_text=False, num_classes=3)
    with pytest.raises(ValueError, match="without its text tower"):
        init(model, video, jnp.zeros((1, 4), jnp.int32))


def test_cross_entropy_equals_a_hand_computation():
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [-3.0, 4.0, 1.0]], np.float32)
    labels = np.array([0, 2, 1])
    hand = []
    for z, y in zip(logits.astype(np.float64), labels):
        hand.append(-(z[y] - np.log(np.exp(z).sum())))
    got = losses.cross_entropy_loss(jnp.asarray(logits, jnp.bfloat16), jnp.asarray(labels))
    assert got.dtype == jnp.float32
    want = losses.cross_entropy_loss(jnp.asarray(logits), jnp.asarray(labels))
    assert float(want) == pytest.approx(np.mean(hand), rel=1e-6)
    assert float(got) == pytest.approx(np.mean(hand), rel=1e-2)  # bf16 inputs, fp32 maths


# ------------------------------------------------------------------------------ optimiser


def test_classifier_layer_has_its_own_group_at_the_fusion_ratio(config, setup):
    params = _abstract_params(setup.model)
    groups = setup.plan.objective.param_groups
    labels = optim.group_labels(params, extra_groups=groups)
    labels = dict(zip(_paths(params), jax.tree.leaves(labels), strict=True))
    assert labels["classifier/kernel"] == labels["classifier/bias"] == "classifier"
    assert all(g == "visual" for p, g in labels.items() if p.startswith("clip/visual/"))
    assert all(g == "fusion" for p, g in labels.items() if p.startswith("fusion/"))
    assert "text" not in labels.values()

    cfg = copy.deepcopy(config.optim)
    cfg.lr, cfg.fusion_ratio, cfg.visual_ratio, cfg.warmup_epochs = 1e-4, 10.0, 0.5, 0
    cfg.lr_mults = ()  # the demo's position-table multiplier would add a group of its own
    # The group's ratio is what the objective read off the config: here the fixture's.
    groups = [(n, rx, cfg.fusion_ratio) for n, rx, _ in groups]
    _, schedules = optim.make_optimizer(cfg, params, STEPS_PER_EPOCH, groups)
    assert float(schedules["classifier"](0)) == pytest.approx(1e-3)  # lr × fusion_ratio
    assert float(schedules["visual"](0)) == pytest.approx(5e-5)
    assert set(schedules) == {"classifier", "visual", "fusion"}  # no empty text group
    # A video–text model has no classifier group.
    video_text = actionclip.build({**actionclip.spec_of(setup.model), "with_text": True,
                                   "num_classes": 0})  # fmt: skip
    _, vt = optim.make_optimizer(cfg, _abstract_params(video_text), 3)
    assert set(vt) == {"text", "visual", "fusion"}
    # freeze still wins over the group.
    frozen = optim.group_labels(params, "classifier/.*", extra_groups=groups)
    assert frozen["classifier"] == {"kernel": "frozen", "bias": "frozen"}


# ------------------------------------------------------------------------------- training


def test_loss_decreases_on_a_fixed_batch(setup):
    plan, mesh, shardings = setup.plan, setup.mesh, setup.state_plan.shardings
    cfg, model = plan.config, plan.model
    state = jax.device_put(jax.device_get(setup.state), shardings)  # a copy: the step donates it
    assert "logit_scale" not in state.params["clip"]
    kwargs = train.train_data_kwargs(cfg, model.clip_sizes["image_resolution"])
    it = pipeline.make_train_iterator(plan.train_source, batch_size=cfg.data.batch_size, **kwargs)
    batch = pipeline.to_global(next(it), mesh)
    step = train.jit_train_step(plan, setup.state_plan, mesh)  # as train_and_evaluate runs it
    context = plan.objective.train_context(plan.class_names)
    assert context == {}  # no text table
    seen = []
    for i in range(6):
        state, metrics = step(state, batch, context)
        seen.append(float(metrics["loss"]))  # the loss before each update
        if i == 0:  # Adam's first moment is 0.1 × the gradient: it reaches every parameter
            mu = [
                (jax.tree_util.keystr(k), x)
                for k, x in jax.tree_util.tree_leaves_with_path(state.opt_state)
                if ".mu" in jax.tree_util.keystr(k)
            ]
            assert len(mu) == len(jax.tree.leaves(state.params))
            dead = [k for k, x in mu if not np.any(np.asarray(x) != 0)]
            assert not dead, dead
    assert "logit_scale" not in metrics
    assert np.isfinite(seen).all() and seen[0] > 0
    assert seen[-1] < 0.5 * seen[0], seen


def test_end_to_end_run_writes_classifier_results_and_resumes(config, tmp_path):
    cfg = copy.deepcopy(config)
    cfg.max_steps = 2
    results = train.train_and_evaluate(cfg, tmp_path)
    written = h.eval_results(tmp_path)
    for field in ("top1", "top5", "mean_class_acc", "num_videos", "views", "checkpoint_step"):
        assert field in written, field
    assert written["objective"] == "classifier" and results["objective"] == "classifier"
    assert written["num_videos"] == 30 and written["checkpoint_step"] == 2
    assert written["num_classes"] == NUM_CLASSES and written["templates"] == 0
    assert written["templates_spec"] == "none"  # no text, whatever `text.templates` says
    assert 0.0 <= written["top1"] <= written["top5"] <= 1.0
    assert h.eval_results(tmp_path, "eval_results_heldout.json")["objective"] == "classifier"
    params = h.load_params(tmp_path, 2)
    assert set(params) == {"clip", "fusion", "classifier"}
    assert set(params["clip"]) == {"visual"}

    # `mode=eval` restores the run's own parameters (a tree without text) and scores them.
    cfg.mode = "eval"
    again = evaluate.evaluate(cfg, tmp_path)
    assert again["objective"] == "classifier"
    for field in ("top1", "top5", "num_videos"):
        assert again[field] == written[field], field

    # The ablation table: `report` sets the run beside an ActionCLIP run, objectives named.
    other = tmp_path / "video_text_run"
    other.mkdir()
    (other / "eval_results.json").write_text(
        json.dumps({**written, "objective": "video_text", "top1": 0.5})
    )
    header, rows = reports.runs_table(reports.load_runs([tmp_path, other]))
    row = {r[0]: dict(zip(header[1:], r[1:])) for r in rows}
    assert row["objective"][tmp_path.name] == "classifier"
    assert row["objective"]["video_text_run"] == "video_text"
    assert row["top-1 %"]["video_text_run"] == "50.00"


# --------------------------------------------------------------- what a classifier cannot do


def test_protocols_with_unseen_classes_fail_at_once_naming_the_objective(
    config, tmp_path, monkeypatch
):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the run got past the plan's checks")

    monkeypatch.setattr(train, "plan_train_state", must_not_run)
    monkeypatch.setattr(plan_lib, "initial_params", must_not_run)
    zero_shot = copy.deepcopy(config)
    zero_shot.eval.protocol = "zero_shot"
    zero_shot.eval.splits = ("ucf101/val1",)
    zero_shot.eval.split_labels = ("ucf101",)
    for run in (train.train_and_evaluate, evaluate.evaluate):
        with pytest.raises(ValueError, match=r"eval\.protocol: 'zero_shot'.*'classifier' cannot"):
            run(zero_shot, tmp_path / "zs")

    # A split scored against other labels (here HMDB51's) names the classes it cannot score.
    other = copy.deepcopy(config)
    other.eval.splits = ("hmdb51/val1",)
    other.eval.split_labels = ("hmdb51",)
    with pytest.raises(ValueError, match=r"eval\.splits\[0\].*not among.*unseen"):
        train.train_and_evaluate(other, tmp_path / "other")

    # Base-to-novel: the novel split's classes were never trained on.
    b2n = copy.deepcopy(config)
    b2n.eval.protocol = "base2novel"
    b2n.eval.splits = ("ucf101/base2novel/base_val", "ucf101/base2novel/novel_val")
    b2n.eval.split_labels = ("ucf101_base", "ucf101_novel")
    b2n.eval.split_names = ("base", "novel")
    with pytest.raises(ValueError, match=r"eval\.protocol: 'base2novel'.*'classifier' cannot"):
        plan_lib.make_plan(b2n, tmp_path / "b2n")
    b2n.eval.protocol = "standard"  # the same passes under another name: the novel one fails
    b2n.data.synthetic.enabled = False
    b2n.data.labels = "ucf101_base"
    b2n.data.train = b2n.data.val = "ucf101/base2novel/base_val"
    with pytest.raises(ValueError, match=r"eval\.splits\[1\].*not among"):
        plan_lib.make_plan(b2n, tmp_path / "b2n")
    # A video–text model scores any class.
    b2n.model.objective = "video_text"
    b2n.data.root = str(tmp_path)  # the lists' videos need not exist for the plan
    assert [t.name for t in plan_lib.make_plan(b2n, tmp_path / "b2n").protocol] == [
        "base", "novel"
    ]  # fmt: skip


def test_classifier_scores_a_subset_of_its_classes_by_name():
    trained = ["a", "b", "c", "d"]
    np.testing.assert_array_equal(classifier.class_index(trained, trained), [0, 1, 2, 3])
    np.testing.assert_array_equal(classifier.class_index(["d", "b"], trained), [3, 1])
    with pytest.raises(ValueError, match="e.g. \\['z'\\]"):
        classifier.class_index(["a", "z"], trained)


def test_half_class_subsets_of_classifier_logits_softmax_over_the_subset(setup):
    # The evaluator's own step, with the classifier's predict_fn replaced by fixed logits.
    rng = np.random.default_rng(3)
    b, v, c = 24, 2, 10
    logits = rng.normal(0, 2, (b, v, 1, c)).astype(np.float32)  # one "template"
    labels = rng.integers(0, c, b)
    logits[np.arange(b), :, 0, labels] += 1.5
    masks = protocols.subset_masks(protocols.half_class_subsets(c, 3, seed=1), c)
    batch = {
        "video": np.zeros((b, v, 1, 1, 1, 3), np.uint8),
        "label": labels.astype(np.int32),
        "index": np.arange(b),
        "mask": np.ones(b, bool),
        "bad": np.zeros(b, np.int32),
    }
    fixed = lambda params, video, classes: jnp.asarray(logits.reshape(b * v, 1, c))
    out = jax.jit(
        functools.partial(evaluator.eval_step, predict_fn=fixed, reduce="softmax_mean",
                          dtype=jnp.float32)  # fmt: skip
    )(None, batch, None, masks, b)
    for i, m in enumerate(masks):
        inside = m[labels]
        z = np.where(m, logits[:, :, 0], -np.inf)  # softmax over the subset, per view
        p = np.exp(z - z.max(-1, keepdims=True))
        pred = (p / p.sum(-1, keepdims=True)).mean(1).argmax(-1)
        assert float(out.half.count[i]) == inside.sum()
        assert float(out.half.correct[i]) == np.sum((pred == labels) & inside)


# ------------------------------------------------------------------------------------ import


def test_import_from_pytorch_clip_keeps_the_image_tower_and_drops_text(
    config, small_clip_files, caplog, tmp_path
):
    path = str(small_clip_files["state_dict"])
    cfg = copy.deepcopy(config)
    cfg.init.checkpoint = path
    cfg.init.activation = "quick_gelu"  # a plain state dict does not say it
    cfg.model.head = "meanP"  # what an OpenAI CLIP file gives: no head to start randomly
    with caplog.at_level(logging.INFO):
        plan = plan_lib.make_plan(cfg, tmp_path)
    loaded = plan.pretrained
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert "text tower" in log and "logit_scale" in log and path in log
    assert set(loaded) == {"clip"} and set(loaded["clip"]) == {"visual"}

    blank = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), _abstract_params(plan.model))
    merged = plan_lib.merge_pretrained(blank, loaded, path)
    assert set(merged) == {"clip", "classifier"} and set(merged["clip"]) == {"visual"}
    np.testing.assert_array_equal(merged["classifier"]["kernel"], 0.0)  # stays as initialised
    _, clip_params = weights.load_clip(path, activation="quick_gelu")
    got = flax.traverse_util.flatten_dict(merged["clip"]["visual"], sep="/")
    want = flax.traverse_util.flatten_dict(clip_params["visual"], sep="/")
    assert set(got) == set(want)
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)

    # Any other mismatch still fails: text parameters do not fit a classifier ...
    with pytest.raises(weights.CheckpointError, match="do not fit the model"):
        plan_lib.merge_pretrained(blank, {"clip": clip_params}, path)
    # ... and an image tower with a block missing is incomplete.
    partial = copy.deepcopy(loaded)
    del partial["clip"]["visual"]["ln_post"]
    with pytest.raises(weights.CheckpointError, match="lacks the parameters"):
        plan_lib.merge_pretrained(blank, partial, path)
