"""FROSTER in the framework: its training loss and gradients, its checkpoints and its class texts
match the PyTorch transcription of the original (`reference_froster.py`); the teacher is frozen
θ₀ in the train context; descriptions files are validated with errors that name what is wrong."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
import reference_froster as ref_fr
import reference_openvocab as ref_ov
import torch

from actionclip_jax import descriptions, importers, load_actionclip, prompts, weights
from actionclip_jax import plan as plan_lib
from actionclip_jax.models import actionclip
from actionclip_jax.models.projector import ResidualProjector
from actionclip_jax.objectives import froster
from actionclip_jax.tokenizer import tokenize

TOL = 1e-4
SIZES = {
    "embed_dim": 48,
    "image_resolution": 32,
    "vision_layers": 2,
    "vision_width": 64,
    "vision_patch_size": 8,
    "context_length": 77,
    "vocab_size": 49408,
    "transformer_width": 64,
    "transformer_heads": 1,
    "transformer_layers": 1,
}
NAMES = ["ApplyEyeMakeup", "brush hair", "riding a bike"]
DESCRIPTIONS = {
    "ApplyEyeMakeup": "Apply Eye Makeup: someone paints their eyelids with a small brush",
    "brush hair": "brush hair: a person pulls a brush through long hair",
    "riding a bike": "riding a bike: a cyclist pedals along a road",
}


def _clip(seed):
    return reference.make_reference_clip(SIZES, seed)


def _video(t, b=2, seed=3):
    frames = np.random.RandomState(seed).randint(0, 256, (b, t, 32, 32, 3)).astype(np.uint8)
    return ref_ov.clip_normalise(frames)


def _projectors(seed, second_layer_scale=0.0):
    """FROSTER's projectors; a non-zero second layer makes every path of the loss count."""
    e = SIZES["embed_dim"]
    pv, pt = ref_fr.make_projector(e, seed), ref_fr.make_projector(e, seed + 1)
    if second_layer_scale:
        g = torch.Generator().manual_seed(seed + 2)
        with torch.no_grad():
            for p in (pv, pt):
                p[2].weight.copy_(torch.randn(p[2].weight.shape, generator=g) * second_layer_scale)
    return pv, pt


def _froster_file(path, t, teacher=True, second_layer_scale=0.5):
    """A per-epoch FROSTER file (student θ seed 0, teacher θ₀ seed 7) and its torch parts."""
    student = ref_ov.make_temporal_visual_(_clip(0), t)
    teacher_model = _clip(7)
    pv, pt = _projectors(11, second_layer_scale)
    torch.save(ref_fr.checkpoint(student, pv, pt, teacher_model if teacher else None), path)
    return student, teacher_model, pv, pt


def _training_objective(path, t, **kwargs):
    """The JAX student as a FROSTER run that starts from `path` keeps it."""
    model, params, info = load_actionclip(path, num_frames=t, return_info=True)
    model = actionclip.build({**actionclip.spec_of(model), "projectors": True})
    params = {**params, **info["projectors"]}
    objective = froster.bundle(model, num_classes=len(NAMES), **kwargs)
    return model, params, info["teacher"], objective


# ---------------------------------------------------------------------------- training parity


@pytest.mark.slow  # compiles the student's and the teacher's passes and the gradient, per form
@pytest.mark.parametrize("form", ["cosine", "l2"])
def test_training_loss_and_gradients_match_the_transcription(tmp_path, form):
    t = 2
    student, teacher, pv, pt = _froster_file(tmp_path / "epoch.pyth", t)
    _, params, theta0, objective = _training_objective(
        tmp_path / "epoch.pyth", t, descriptions=DESCRIPTIONS, distill_form=form,
        train_templates=1,
    )  # fmt: skip
    context = objective.train_context(NAMES)
    context["reference"] = theta0
    context = objective.prepare_context(context, params)
    video = _video(t, b=3, seed=11)
    labels = np.array([2, 0, 1], np.int32)
    inputs = {"video": jnp.asarray(video), "label": jnp.asarray(labels)}
    # One jitted pass (op-by-op dispatch of the backward pass costs more than compiling it)
    # gives the gradients of both the parameters and θ₀ (the teacher's, which must be zero).
    def loss_fn(p, reference, ctx):
        return objective.loss_fn(p, inputs, jax.random.key(4), {**ctx, "reference": reference})

    (loss, aux), (grads, teacher_grad) = jax.jit(
        jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)
    )(params, context["reference"], context)
    drawn = int(aux["template"])
    assert 0 <= drawn < 28

    strings = [DESCRIPTIONS[n] for n in NAMES]
    outputs = ref_fr.training_forward(student, teacher, pv, pt, video, strings, drawn)
    want, ce, d_video, d_text = ref_fr.loss(outputs, labels, form)
    want.backward()
    for got, ref in ((loss, want), (aux["loss_ce"], ce), (aux["distill_video"], d_video),
                     (aux["distill_text"], d_text)):  # fmt: skip
        got, ref = float(got), float(ref.detach())
        assert abs(got - ref) <= TOL * abs(ref) + 1e-7
    assert float(d_video) > 1e-3 and float(d_text) > 1e-4  # both terms take part

    flat = {"/".join(str(k.key) for k in path): np.asarray(g)
            for path, g in jax.tree_util.tree_leaves_with_path(grads)}  # fmt: skip
    got_all, want_all = [], []
    for key, p in student.named_parameters():
        path, fn = weights.torch_key_to_flax(key, p.ndim)
        got_all.append(flat.pop("clip/" + "/".join(path)).ravel())
        want_all.append(np.asarray(fn(p.grad.numpy()), np.float32).ravel())
    for name, proj in (("projector_v", pv), ("projector_t", pt)):
        for i, layer in ((0, "linear1"), (2, "linear2")):
            got_all.append(flat.pop(f"{name}/{layer}/kernel").ravel())
            want_all.append(proj[i].weight.grad.numpy().T.ravel())
    assert not flat  # every parameter compared
    got_all, want_all = np.concatenate(got_all), np.concatenate(want_all)
    assert reference.rel_err(got_all, want_all) < TOL

    # The teacher is frozen: no gradient reaches θ₀ through the context.
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(teacher_grad))


def test_l2_distance_has_zero_gradient_where_student_and_teacher_agree():
    s = jnp.array([[1.0, 2.0], [0.5, 0.5]])
    t = jnp.array([[1.0, 2.0], [0.5, 1.5]])
    value, grad = jax.value_and_grad(froster.l2_distance)(s, t)
    assert float(value) == pytest.approx(0.5)  # mean of 0 and 1
    np.testing.assert_allclose(grad, [[0.0, 0.0], [0.0, -0.5]])


def test_projectors_start_as_the_identity_with_a_kaiming_first_layer():
    e = 256
    params = ResidualProjector().init(jax.random.key(0), jnp.zeros((1, e)))["params"]
    assert not np.any(np.asarray(params["linear2"]["kernel"]))
    w1 = np.asarray(params["linear1"]["kernel"])
    assert w1.std() == pytest.approx((2 / e) ** 0.5, rel=0.02)
    assert np.abs(w1).max() > 3.5 * (2 / e) ** 0.5  # a plain normal, not a truncated one
    x = jax.random.normal(jax.random.key(1), (4, e))
    np.testing.assert_array_equal(ResidualProjector().apply({"params": params}, x), x)


def test_a_step_draws_one_of_the_28_templates_and_always_the_bare_text():
    draw = froster.template_draw(prompts.FROSTER_TEMPLATES, 1)
    drawn = np.array([np.asarray(draw(jax.random.key(i))) for i in range(200)])
    assert drawn.shape == (200, 2)
    assert set(drawn[:, 1]) == {28}  # the bare "{}" every step
    assert set(drawn[:, 0]) <= set(range(28)) and len(set(drawn[:, 0])) > 20
    np.testing.assert_array_equal(froster.template_draw(prompts.FROSTER_TEMPLATES, 0)(
        jax.random.key(0)), np.arange(29))  # fmt: skip
    assert prompts.FROSTER_TEMPLATES == tuple(ref_fr.FROSTER_TEMPLATES)


# ------------------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("per_epoch", [False, True])
def test_froster_checkpoint_scores_like_the_transcription_without_its_training_tensors(
    tmp_path, per_epoch
):
    t = 3
    path = tmp_path / "froster.pth"
    student, teacher, _, _ = _froster_file(path, t, teacher=per_epoch)
    model, params, info = load_actionclip(path, num_frames=t, return_info=True)
    assert (info["kind"], info["recipe"]) == ("froster", "FROSTER")
    assert (model.frame_stage, model.head, model.projectors) == ("neighbour", "mean_logits", False)
    assert set(params) == {"clip"}  # projectors and teacher are not the model's weights
    dropped = weights.read_checkpoint(path)["dropped"]
    assert dropped[:4] == sorted(importers.FROSTER_PROJECTORS)
    assert any(d.startswith("raw_model.*") for d in dropped) == per_epoch

    video = _video(t)
    with torch.no_grad():
        words = [prompts.class_name_words(n) for n in NAMES]  # plain names, 29 templates
        w = ref_ov.ensemble_classifier(student, words, ref_fr.FROSTER_TEMPLATES)
        want = ref_ov.openvclip_logits(student, video, w)
    from actionclip_jax.predict import scorer  # pylint: disable=import-outside-toplevel

    objective = scorer(model, info["kind"])
    classes = objective.classes_fn(params, objective.class_info(NAMES))
    got = np.asarray(objective.predict_fn(params, jnp.asarray(video), classes))[:, 0]
    assert reference.rel_err(got, want) < TOL

    # θ₀ for a run that starts from the file: its copy of the original CLIP, where it has one.
    _, original = weights.load_clip(path, original=True)
    _, own = weights.load_clip(path)
    want_proj = (teacher if per_epoch else student).visual.proj.detach().numpy()
    np.testing.assert_array_equal(original["visual"]["proj"], want_proj)
    np.testing.assert_array_equal(own["visual"]["proj"], student.visual.proj.detach().numpy())


def test_froster_import_is_strict(tmp_path):
    clip = _clip(0)
    pv, pt = _projectors(1)
    good = ref_fr.checkpoint(clip, pv, pt)

    def refused(state, match):
        torch.save({"model_state": state}, tmp_path / "bad.pth")
        with pytest.raises(weights.CheckpointError, match=match):
            weights.read_checkpoint(tmp_path / "bad.pth")

    refused({**good["model_state"], "projector_x.0.weight": torch.zeros(48, 48)},
            r"unknown tensors \['projector_x.0.weight'\]")  # fmt: skip
    partial = {k: v for k, v in good["model_state"].items() if k != "projector_t.2.weight"}
    refused(partial, r"only some projector tensors \(no \['projector_t.2.weight'\]\)")
    refused({**good["model_state"], "projector_v.0.weight": torch.zeros(48, 32)}, r"\[48, 48\]")
    teacher = {f"raw_model.{k}": v for k, v in clip.state_dict().items() if k != "logit_scale"}
    refused({**good["model_state"], **teacher}, r"raw_model. copy .*differs in \['logit_scale'\]")


def test_a_run_started_from_a_froster_file_keeps_its_projectors_and_teacher(tmp_path):
    t = 2
    path = tmp_path / "epoch.pyth"
    _, teacher, pv, _ = _froster_file(path, t)
    config = _config(tmp_path, **{"init.checkpoint": str(path)})
    fields = froster.model_fields(len(NAMES))
    sizes, pretrained, theta0 = plan_lib._load_pretrained(config, fields)
    np.testing.assert_array_equal(pretrained["projector_v"]["linear2"]["kernel"],
                                  pv[2].weight.detach().numpy().T)  # fmt: skip
    model = actionclip.build({"clip": sizes, "video": {"num_frames": t, "frame_stage": "neighbour",
                              "head": "mean_logits"}, **fields})  # fmt: skip
    want = teacher.visual.proj.detach().numpy()
    ref = plan_lib.load_reference(config, model, pretrained, teacher=theta0)
    np.testing.assert_array_equal(ref["visual"]["proj"], want)
    # Resuming reads θ₀ from the file again (its model's weights come from the run).
    np.testing.assert_array_equal(plan_lib.load_reference(config, model)["visual"]["proj"], want)
    # Another objective's model has no projectors: the file's are not imported.
    _, plain, _ = plan_lib._load_pretrained(config, {"with_text": True, "num_classes": 0})
    assert "projector_v" not in plain


# ----------------------------------------------------------------------------- descriptions


def _write(tmp_path, obj, name="descriptions.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_class_texts_follow_the_original_formula_with_and_without_descriptions():
    tmpl = prompts.FROSTER_TEMPLATES
    texts = descriptions.class_texts(NAMES, tmpl, DESCRIPTIONS)
    strings = [DESCRIPTIONS[n] for n in NAMES]
    for k, template in enumerate(tmpl):
        assert texts[k] == ref_fr.class_texts(strings, template)
    assert texts[0][0] == ("a photo of Apply Eye Makeup. Apply Eye Makeup: someone paints their "
                           "eyelids with a small brush")  # fmt: skip
    plain = descriptions.class_texts(NAMES, tmpl, None, ["Apply Eye Makeup", "b", "c"])
    assert plain[0][0] == "a photo of Apply Eye Makeup." and plain[28] == ["Apply Eye Makeup",
                                                                         "b", "c"]  # fmt: skip


def test_descriptions_files_are_validated_naming_the_file_and_the_classes(tmp_path):
    def fails(obj, match):
        path = _write(tmp_path, obj)
        with pytest.raises(descriptions.DescriptionError, match=match) as err:
            checked = descriptions.read_descriptions(path)
            descriptions.check_classes(checked, NAMES, path)
            descriptions.check_no_extra(checked, [NAMES], path)
        assert str(path) in str(err.value)

    fails("{not json", "is not valid UTF-8 JSON")
    fails(["a", "b"], "one JSON object mapping class names .* not a list")
    fails({}, "no class descriptions")
    fails({"0": "Apply Eye Makeup: x", "1": "b: y"}, "keyed by class index .* --labels=LABELS")
    fails({**DESCRIPTIONS, "brush hair": 3}, r"'brush hair' are int, not strings")
    fails({**DESCRIPTIONS, "brush hair": "no colon here"}, r"'brush hair' are not 'Name: descr")
    misspelt = {("Apply Eye Makeup" if k == "ApplyEyeMakeup" else k): v
                for k, v in DESCRIPTIONS.items()}  # fmt: skip
    fails(misspelt, r"2 of the 3 classes .* none for 'ApplyEyeMakeup' \(misspelt\? it has "
                    r"'Apply Eye Makeup' for 'ApplyEyeMakeup'\)")  # fmt: skip
    fails({**DESCRIPTIONS, "juggling": "juggling: balls"}, r"1 classes this run never scores: "
                                                          "'juggling'")  # fmt: skip
    with pytest.raises(FileNotFoundError, match="text.descriptions"):
        descriptions.read_descriptions(tmp_path / "absent.json")


def test_description_tables_cut_only_padding_so_the_text_tower_runs_short_sequences():
    texts = descriptions.class_texts(NAMES, prompts.FROSTER_TEMPLATES, DESCRIPTIONS)
    table = descriptions.tokens(texts, NAMES, 77, "d.json")
    full = tokenize([t for per in texts for t in per]).reshape(len(texts), len(NAMES), 77)
    length = table.shape[-1]
    assert length % prompts.TOKEN_MULTIPLE == 0 and length < 77
    np.testing.assert_array_equal(table, full[..., :length])
    assert not full[..., length:].any()


def test_a_description_too_long_for_the_context_names_the_class(tmp_path):
    long = {**DESCRIPTIONS, "brush hair": "brush hair: " + "very " * 80 + "long"}
    with pytest.raises(descriptions.DescriptionError, match=r"'brush hair' \d+; shorten"):
        descriptions.tokens(descriptions.class_texts(NAMES, prompts.FROSTER_TEMPLATES, long),
                            NAMES, 77, "d.json")  # fmt: skip


def test_the_command_keys_an_index_keyed_file_by_a_label_list(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(NAMES)))
    obj = {str(i): DESCRIPTIONS[n] for i, n in enumerate(NAMES)}
    out, mismatches = descriptions.key_by_names(obj, [NAMES], "f.json")
    assert out == DESCRIPTIONS and mismatches == []
    swapped = {"0": obj["1"], "1": obj["0"], "2": obj["2"]}
    _, mismatches = descriptions.key_by_names(swapped, [NAMES], "f.json")
    assert [c for c, _ in mismatches] == ["ApplyEyeMakeup", "brush hair"]
    with pytest.raises(descriptions.DescriptionError, match=r"ids 0..1 \(2\) for 3 classes"):
        descriptions.key_by_names({"0": obj["0"], "1": obj["1"]}, [NAMES], "f.json")


# ------------------------------------------------------------------------------------ config


def _config(tmp_path, **fields):
    from configs import froster as froster_configs  # pylint: disable=import-outside-toplevel

    config = froster_configs.get_config("k400")
    with config.unlocked():
        config.init.checkpoint = ""
        for key, value in fields.items():
            section, name = key.split(".")
            config[section][name] = value
    return config


@pytest.mark.parametrize("arg", ["k400", "zero_shot,ucf101", "zero_shot,hmdb51,full",
                                 "zero_shot,k600", "zero_shot,ucf101,released",
                                 "base2novel,hmdb51,s2", "demo"])  # fmt: skip
def test_froster_configs_hold_valid_values(arg):
    from configs import froster as froster_configs  # pylint: disable=import-outside-toplevel

    config = froster_configs.get_config(arg)
    plan_lib.check_values(config)
    assert config.model.objective == "froster"
    assert (config.model.frame_stage, config.model.head) == ("neighbour", "mean_logits")
    assert config.text.templates == "froster29" and config.eval.view_reduce == "logit_sum"
    assert config.weight_space.interpolate == 0.0  # FROSTER does not mix back to CLIP


def test_bad_froster_values_fail_naming_the_field(tmp_path):
    for field, value, match in (
        ("loss.distill_form", "l1", "loss.distill_form: 'l1' is not one of"),
        ("loss.distill_weight", -1.0, "loss.distill_weight: must be >= 0"),
        ("optim.projector_ratio", 0.0, "optim.projector_ratio: must be > 0"),
    ):
        with pytest.raises(plan_lib.ConfigError, match=match):
            plan_lib.check_values(_config(tmp_path, **{field: value}))


# ------------------------------------------------------------------------ the loop's view


def _tiny_froster_config(**fields):
    from configs import froster as froster_configs  # pylint: disable=import-outside-toplevel
    from configs import test as test_config  # pylint: disable=import-outside-toplevel

    config = froster_configs.recipe(test_config.get_config())
    with config.unlocked():
        config.data.num_frames = 4
        for key, value in fields.items():
            section, name = key.split(".")
            config[section][name] = value
    return config


@pytest.mark.slow  # initialises a sharded train state and encodes 29 × 5 class texts
def test_teacher_is_theta0_sharded_like_the_parameters_and_has_no_optimiser_state():
    from actionclip_jax import sharding, train  # pylint: disable=import-outside-toplevel

    config = _tiny_froster_config(**{"sharding.fsdp": True, "sharding.fsdp_min_size": 4096,
                                     "optim.projector_ratio": 3.0})  # fmt: skip
    plan = plan_lib.model_plan(config, [f"class {i}" for i in range(5)])
    mesh = sharding.make_mesh()
    state_plan = train.plan_train_state(plan, mesh, steps_per_epoch=10)
    assert state_plan.schedules["projectors"](20) == pytest.approx(
        3.0 * state_plan.schedules["text"](20)
    )
    state = train.initial_state(plan, state_plan)
    assert set(state.params) == {"clip", "projector_v", "projector_t"}
    context, shardings = train.train_context(plan, state_plan, mesh, state.params)
    # θ₀ is the run's initial CLIP (no init.clip / init.checkpoint here), placed as the params.
    flat_ref = jax.tree_util.tree_leaves_with_path(context["reference"])
    params_clip = dict(jax.tree_util.tree_leaves_with_path(state.params["clip"]))
    assert any(len(leaf.sharding.device_set) == 8 and not leaf.sharding.is_fully_replicated
               for _, leaf in flat_ref)  # FSDP shards the big ones  # fmt: skip
    for path, leaf in flat_ref:
        assert leaf.sharding == params_clip[path].sharding
        np.testing.assert_array_equal(leaf, params_clip[path])
    assert context["teacher_text"].shape == (29, 5, config.model.clip.embed_dim)
    # The optimiser holds two moments per trained parameter and nothing for θ₀.
    # (Scalars such as the logit scale are left out on both sides: the step count is one too.)
    n_params = sum(x.size for x in jax.tree.leaves(state.params) if x.ndim > 0)
    n_moments = sum(x.size for x in jax.tree.leaves(state.opt_state) if x.ndim > 0)
    assert n_moments == 2 * n_params


FROSTER_TEST_RUN = (
    "--config.model.objective=froster",
    "--config.model.frame_stage=neighbour",
    "--config.model.head=mean_logits",
    "--config.text.templates=froster29",
    "--config.text.train_templates=1",
    "--config.checkpoint.keep_epochs=True",
    "--config.weight_space.average_epochs=(1,2)",
    "--config.data.eval_sampling=window",
    "--config.data.eval_stride=4",
    "--config.data.num_clips=3",
    "--config.eval.view_reduce=logit_sum",
    "--config.loss.distill_form=l2",
    "--config.sharding.fsdp=True",
    "--config.sharding.fsdp_min_size=4096",
)


@pytest.mark.slow
def test_froster_run_resumes_with_its_teacher_and_writes_directories_without_projectors(
    tmp_path_factory,
):
    import train_helpers as h  # pylint: disable=import-outside-toplevel

    from actionclip_jax import weight_space  # pylint: disable=import-outside-toplevel

    basetemp = tmp_path_factory.getbasetemp()
    sizes = {"embed_dim": 32, "image_resolution": 32, "vision_layers": 1, "vision_width": 64,
             "vision_patch_size": 8, "context_length": 32, "vocab_size": 49408,
             "transformer_width": 64, "transformer_heads": 1,
             "transformer_layers": 1}  # configs/test.py's  # fmt: skip
    clip_file = tmp_path_factory.mktemp("froster_init") / "clip.pt"
    torch.save(reference.make_reference_clip(sizes, 0).state_dict(), clip_file)
    workdir = tmp_path_factory.mktemp("froster_run") / "run"
    args = (*FROSTER_TEST_RUN, f"--config.init.checkpoint={clip_file}",
            "--config.init.activation=quick_gelu")
    with h.compile_cache(basetemp):
        h.run(basetemp, workdir, *args, "--config.max_steps=3")  # stops at the end of epoch 1
        log = h.run(basetemp, workdir, *args, log=workdir.with_suffix(".2.log"))
    assert "resumed from step 3" in log
    assert "θ₀ (the original CLIP weights) from init.checkpoint" in log
    assert "train/distill_video" in log and "train/distill_text" in log
    heldout = h.eval_results(workdir, "eval_results_heldout.json")
    assert heldout["weights"] == "average of epochs 1-2"
    params = h.load_params(workdir, 6)
    assert np.any(np.asarray(params["projector_v"]["linear2"]["kernel"]))  # trained from zero
    _, clip_params = weights.load_clip(clip_file, activation="quick_gelu")
    assert not np.array_equal(params["clip"]["ln_final"]["scale"],
                              clip_params["ln_final"]["scale"])  # the text side trains  # fmt: skip

    # Directories written from the run hold the model's weights, not the projectors.
    averaged, _ = weight_space.average_command(run=str(workdir), epochs="1,2")
    assert set(averaged) == {"clip"}
    out = tmp_path_factory.mktemp("froster_swa") / "swa"
    weights.save_converted(out, weight_space._meta_of(sizes, {**actionclip.VIDEO_DEFAULTS,
        "num_frames": 4, "frame_stage": "neighbour", "head": "mean_logits"}, str(workdir), "run",
        "average"), averaged)  # fmt: skip
    model, loaded = load_actionclip(out)
    assert model.frame_stage == "neighbour" and set(loaded) == {"clip"}
