"""ViFi-CLIP and Open-VCLIP in the framework: their checkpoints import strictly and their forward
passes, classifier and IWO gradient match the PyTorch transcription (`reference_openvocab.py`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import reference
import reference_openvocab as ref_ov
from actionclip_jax import CheckpointError, augment, load_actionclip, prompts, scoring, weights
from actionclip_jax.models import clip
from actionclip_jax.models.clip import l2_normalize
from actionclip_jax.objectives import class_texts
from actionclip_jax.predict import scorer

TOL = 1e-4
SIZES = dict(
    embed_dim=48,
    image_resolution=32,
    vision_layers=2,
    vision_width=64,
    vision_patch_size=8,
    context_length=77,
    vocab_size=49408,
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=1,
)
NAMES = ["ApplyEyeMakeup", "brush hair", "riding a bike"]


def _clip(seed=0):
    return reference.make_reference_clip(SIZES, seed)


def _uint8_video(t, b=2, seed=3):
    return np.random.RandomState(seed).randint(0, 256, (b, t, 32, 32, 3)).astype(np.uint8)


def _embedding(model, params, video):
    return np.asarray(model.apply({"params": params}, jnp.asarray(video),
                                  method=model.video_embedding))  # fmt: skip


def _logits(model, params, video, kind):
    objective = scorer(model, kind)
    weights_ = objective.classes_fn(params, objective.class_info(NAMES))  # [1, C, E]
    return np.asarray(objective.predict_fn(params, jnp.asarray(video), weights_))[:, 0]


# ------------------------------------------------------------------------------------ Open-VCLIP


@pytest.mark.parametrize("t", [1, 3])
def test_openvclip_checkpoint_features_and_logits_match_the_transcription(tmp_path, t):
    clip = _clip()
    path = tmp_path / "swa_2_22.pth"
    torch.save(ref_ov.openvclip_checkpoint(clip), path)
    model, params, info = load_actionclip(path, num_frames=t, return_info=True)
    assert (info["kind"], info["recipe"]) == ("open_vclip", "Open-VCLIP")
    assert (model.frame_stage, model.head, model.pixel_norm) == ("neighbour", "mean_logits", "clip")

    video = ref_ov.clip_normalise(_uint8_video(t))
    ref_model = ref_ov.make_temporal_visual_(_clip(), t)
    with torch.no_grad():
        want = ref_ov.frame_features(ref_model, video)  # [B, T, E]
        classifier = ref_ov.ensemble_classifier(
            ref_model, [prompts.class_name_words(n) for n in NAMES], ref_ov.OPENVCLIP_TEMPLATES
        )
        want_logits = ref_ov.openvclip_logits(ref_model, video, classifier)
    got = _embedding(model, params, video)
    assert reference.rel_err(got, torch.nn.functional.normalize(want, dim=-1).mean(1)) < TOL
    assert reference.rel_err(_logits(model, params, video, info["kind"]), want_logits) < TOL

    # Even one frame differs from plain CLIP: its queries also see 2 × 65 zero keys.
    with torch.no_grad():
        plain = ref_ov.frame_features(clip, video)
    assert reference.rel_err(got, torch.nn.functional.normalize(plain, dim=-1).mean(1)) > 1e-3


@pytest.mark.parametrize("t", [1, 3])
def test_neighbour_attention_is_attention_over_the_concatenated_neighbour_keys(t):
    # The blockwise computation the model uses against the literal one (what cuDNN's path runs):
    # outputs and gradients, zero frames past both ends included.
    q, k, v = jax.random.normal(jax.random.key(t), (3, 2 * t, 5, 2, 8))

    def literal(q, k, v):
        return jax.nn.dot_product_attention(q, clip.neighbour_keys(k, t), clip.neighbour_keys(v, t))

    def blockwise(q, k, v):
        return clip.neighbour_attention(q, k, v, t)

    weights_out = jax.random.normal(jax.random.key(9), q.shape)

    @jax.jit  # one compilation each, not one per eager op
    def outputs_and_grads(q, k, v):
        return [(f(q, k, v), jax.grad(lambda *a, f=f: jnp.sum(f(*a) * weights_out),
                                      argnums=(0, 1, 2))(q, k, v))
                for f in (blockwise, literal)]  # fmt: skip

    (out, grads), (want_out, want_grads) = outputs_and_grads(q, k, v)
    np.testing.assert_allclose(out, want_out, rtol=1e-5, atol=1e-6)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 3 frames"):
        clip.neighbour_attention(q[:4], k[:4], v[:4], 3)


def test_ensemble_classifier_normalises_averages_and_renormalises():
    feats = np.random.RandomState(0).randn(4, 3, 8).astype(np.float32)
    unit = feats / np.linalg.norm(feats, axis=-1, keepdims=True)
    mean = unit.mean(0)
    want = mean / np.linalg.norm(mean, axis=-1, keepdims=True)
    np.testing.assert_allclose(scoring.ensemble_classifier(jnp.asarray(feats)), want, rtol=1e-6)


def test_openvclip_templates_and_word_names():
    assert len(prompts.OPENVCLIP_TEMPLATES) == 28 == len(set(prompts.OPENVCLIP_TEMPLATES))
    assert set(prompts.OPENVCLIP_TEMPLATES) == set(ref_ov.OPENVCLIP_TEMPLATES)
    assert prompts.resolve_templates("vificlip") == ("a photo of a {}.",)
    words = prompts.styled_names(["ApplyEyeMakeup", "brush_hair", "TaiChi", "YoYo"], "words")
    assert words == ["Apply Eye Makeup", "brush hair", "Tai Chi", "Yo Yo"]


# -------------------------------------------------------------------------------------- ViFi-CLIP


@pytest.fixture(scope="module")
def vifi_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vifi")
    clip = _clip(seed=1)
    files = {"vifi": d / "vifi_clip.pth", "clip": d / "clip.pt"}
    torch.save(ref_ov.vificlip_checkpoint(clip, NAMES), files["vifi"])
    torch.save(clip.state_dict(), files["clip"])
    return files


def test_vificlip_checkpoint_without_the_clip_file_names_what_to_pass(vifi_files):
    with pytest.raises(CheckpointError, match="token embedding.*init.clip=ViT-B-16.pt"):
        load_actionclip(vifi_files["vifi"], num_frames=2)


def test_vificlip_checkpoint_features_and_logits_match_the_transcription(vifi_files):
    model, params, info = load_actionclip(
        vifi_files["vifi"], num_frames=2, clip_source=vifi_files["clip"], return_info=True
    )
    assert (info["kind"], info["recipe"]) == ("vificlip", "ViFi-CLIP")
    assert (model.frame_stage, model.head, model.pixel_norm) == ("none", "meanP", "imagenet")

    frames = _uint8_video(2)
    ours = np.asarray(augment.preprocess_uint8(jnp.asarray(frames), "imagenet"))
    theirs = ref_ov.imagenet_normalise(frames)  # 0-255 pixels, ViFi-CLIP's constants
    assert reference.rel_err(ours, theirs) < 1e-5
    clip = _clip(seed=1)
    ckpt = ref_ov.vificlip_checkpoint(clip, NAMES)
    buffer = ckpt["model"]["module.prompt_learner.complete_text_embeddings"]
    tokens = ref_ov.reference_tokens([ref_ov.VIFICLIP_TEMPLATE.format(n) for n in NAMES])
    with torch.no_grad():
        want_v, want_logits = ref_ov.vificlip_logits(clip, theirs, buffer, tokens)
    assert reference.rel_err(_embedding(model, params, ours), want_v) < TOL
    assert reference.rel_err(_logits(model, params, ours, info["kind"]), want_logits) < TOL


def _save_vifi_with(tmp_path, extra):
    ckpt = ref_ov.vificlip_checkpoint(_clip(seed=1), NAMES, with_config=False)
    ckpt["model"].update(extra)
    path = tmp_path / "vifi_extra.pth"
    torch.save(ckpt, path)
    return path


def test_recipe_imports_are_strict(tmp_path, vifi_files):
    unknown = _save_vifi_with(tmp_path, {"module.extra_head.weight": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="unknown tensors.*extra_head"):
        weights.read_checkpoint(unknown, clip_source=vifi_files["clip"])
    prompting = _save_vifi_with(tmp_path, {"module.prompt_learner.ctx": torch.zeros(16, 64)})
    with pytest.raises(CheckpointError, match="bridge-and-prompt"):
        weights.read_checkpoint(prompting, clip_source=vifi_files["clip"])
    ckpt = weights.read_checkpoint(vifi_files["vifi"], clip_source=vifi_files["clip"])
    assert ckpt["dropped"] == ["prompt_learner.complete_text_embeddings"]
    assert set(ckpt["clip"]) == set(_clip().state_dict())  # every CLIP tensor, nothing else

    # (FROSTER's extra tensors make a FROSTER file: tests/test_froster.py.)
    foreign = ref_ov.openvclip_checkpoint(_clip())
    foreign["model_state"]["head.weight"] = torch.zeros(2)
    torch.save(foreign, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match=r"outside model.: \['head.weight'\]"):
        weights.read_checkpoint(tmp_path / "foreign.pth")


# ----------------------------------------------------------------------------------------- IWO


@pytest.mark.slow  # two compiles of a loss with two forward passes and its gradient
def test_iwo_gradient_matches_the_original_three_passes(tmp_path):
    t, names = 2, NAMES
    theta, theta0 = _clip(seed=0), _clip(seed=7)
    for name, m in (("theta", theta), ("theta0", theta0)):
        torch.save(ref_ov.openvclip_checkpoint(m), tmp_path / f"{name}.pth")
    model, params = load_actionclip(tmp_path / "theta.pth", num_frames=t)
    _, params0 = load_actionclip(tmp_path / "theta0.pth", num_frames=t)
    objective = class_texts.bundle(
        model, templates=prompts.OPENVCLIP_TEMPLATES, name_style="words", frozen=True,
        num_classes=len(names), interpolation=(0.0, 0.6, 0.5),
    )  # fmt: skip
    context = objective.prepare_context(objective.train_context(names), params)
    context["reference"] = params0["clip"]
    video = ref_ov.clip_normalise(_uint8_video(t, b=3, seed=11))
    labels = np.array([2, 0, 1], np.int32)
    inputs = {"video": jnp.asarray(video), "label": jnp.asarray(labels)}
    # Jitted: op-by-op dispatch of the whole backward pass costs more than compiling it.
    (loss, aux), grads = jax.jit(jax.value_and_grad(objective.loss_fn, has_aux=True))(
        params, inputs, jax.random.key(4), context
    )
    alpha = float(aux["alpha"])
    assert 0.0 <= alpha <= 0.6

    ref_model = ref_ov.make_temporal_visual_(theta, t)
    ref_zero = ref_ov.make_temporal_visual_(theta0, t)
    with torch.no_grad():
        classifier = ref_ov.ensemble_classifier(
            ref_model, [prompts.class_name_words(n) for n in names], ref_ov.OPENVCLIP_TEMPLATES
        )
        want_plain = ref_ov.cross_entropy_value(
            ref_ov.openvclip_logits(ref_model, video, classifier), labels
        )
    want = ref_ov.iwo_gradients(ref_model, ref_zero, video, labels, classifier, alpha)
    assert abs(float(aux["loss_plain"]) - want_plain) / want_plain < TOL
    flat = {"/".join(str(k.key) for k in path): np.asarray(g)
            for path, g in jax.tree_util.tree_leaves_with_path(grads)}  # fmt: skip
    got_all, want_all = [], []
    for key, g in want.items():
        path, fn = weights.torch_key_to_flax(key, g.ndim)
        got_all.append(flat["clip/" + "/".join(path)].ravel())
        want_all.append(np.asarray(fn(g), np.float32).ravel())
    assert len(got_all) == len(flat)  # every parameter compared
    got_all, want_all = np.concatenate(got_all), np.concatenate(want_all)
    assert np.abs(want_all).max() > 0
    assert reference.rel_err(got_all, want_all) < TOL
    # The interpolated term changed the gradient: it is not the plain loss's alone.
    plain = jax.jit(jax.grad(lambda p: class_texts.bundle(
        model, templates=prompts.OPENVCLIP_TEMPLATES, name_style="words", frozen=True,
        num_classes=len(names),
    ).loss_fn(p, inputs, jax.random.key(4), context)[0]))(params)  # fmt: skip
    plain = np.concatenate([np.asarray(g).ravel() for g in jax.tree.leaves(plain)])
    assert reference.rel_err(plain, want_all) > 1e-2
    assert float(loss) == pytest.approx(float(aux["loss_plain"]) + 0.5 * float(
        aux["loss_interpolated"]), rel=1e-6)


def test_interpolate_moves_values_but_passes_gradients_unscaled():
    params = {"clip": {"w": jnp.array([1.0, 2.0])}, "fusion": {"b": jnp.array([3.0])}}
    ref = {"w": jnp.array([5.0, -2.0])}
    moved = class_texts.interpolate(params, ref, 0.25)
    np.testing.assert_allclose(moved["clip"]["w"], [2.0, 1.0])
    np.testing.assert_allclose(moved["fusion"]["b"], [3.0])
    grad = jax.grad(lambda p: jnp.sum(class_texts.interpolate(p, ref, 0.25)["clip"]["w"] ** 2))
    np.testing.assert_allclose(grad(params)["clip"]["w"], [4.0, 2.0])  # 2 · moved, no (1 − α)


# ----------------------------------------------------------------------------- scoring, mixing


def test_view_reductions_softmax_sum_and_logit_sum():
    logits = jnp.array([[[[2.0, 0.0, 1.0]], [[0.0, 3.0, 0.0]]]])  # [B=1, V=2, K=1, C=3]
    p = jax.nn.softmax(logits[0, :, 0], axis=-1)
    np.testing.assert_allclose(scoring.view_scores(logits, "softmax_sum")[0], p.sum(0), rtol=1e-6)
    np.testing.assert_allclose(scoring.view_scores(logits, "logit_sum")[0], [2.0, 3.0, 1.0])
    mask = jnp.array([True, False, True])
    masked = scoring.view_scores(logits, "logit_sum", mask)[0]
    assert int(jnp.argmax(masked)) == 0 and masked[1] == -jnp.inf
    # A confident view wins the logit sum, not the softmax sum.
    logits = jnp.array([[[[10.0, 0.0]], [[0.0, 2.0]], [[0.0, 2.0]]]])
    assert int(jnp.argmax(scoring.view_scores(logits, "logit_sum")[0])) == 0
    assert int(jnp.argmax(scoring.view_scores(logits, "softmax_sum")[0])) == 1


def test_label_smoothing_and_soft_cross_entropy():
    from actionclip_jax import losses  # pylint: disable=import-outside-toplevel

    t = losses.smooth_labels(jnp.array([1]), 4, 0.1)
    np.testing.assert_allclose(t[0], [0.025, 0.925, 0.025, 0.025], rtol=1e-6)
    logits = jnp.array([[1.0, 2.0, 0.0, -1.0]])
    want = -np.sum(np.asarray(t[0]) * np.asarray(jax.nn.log_softmax(logits[0])))
    assert float(losses.soft_cross_entropy(logits, t)) == pytest.approx(want, rel=1e-6)


def test_mixup_blends_clips_and_targets_with_one_lambda():
    video = jnp.asarray(np.random.RandomState(0).rand(4, 2, 8, 8, 3).astype(np.float32))
    targets = jax.nn.one_hot(jnp.arange(4), 4)
    out, mixed = augment.mix_videos(video, targets, jax.random.key(0), mixup_alpha=0.8,
                                    cutmix_alpha=0.0)  # fmt: skip
    out, mixed, video = np.asarray(out), np.asarray(mixed), np.asarray(video)
    np.testing.assert_allclose(mixed.sum(1), 1.0, rtol=1e-6)
    lambdas = set()
    for i in range(4):
        others = np.where(np.arange(4) == i, -1.0, mixed[i])
        j = int(np.argmax(others))
        if others[j] < 1e-7:  # its own partner: unchanged
            np.testing.assert_allclose(out[i], video[i], rtol=1e-6)
            continue
        lam = mixed[i, i]
        lambdas.add(round(float(lam), 5))
        np.testing.assert_allclose(out[i], lam * video[i] + (1 - lam) * video[j], atol=1e-6)
    assert len(lambdas) == 1  # one λ for the batch


def test_cutmix_pastes_one_box_of_the_partner_and_lambda_is_the_uncovered_share():
    video = jnp.stack([jnp.full((2, 16, 16, 3), float(i)) for i in range(4)])  # clip i = i
    targets = jax.nn.one_hot(jnp.arange(4), 4)
    for seed in range(5):
        out, mixed = augment.mix_videos(video, targets, jax.random.key(seed), mixup_alpha=0.0,
                                        cutmix_alpha=1.0)  # fmt: skip
        out = np.asarray(out)
        for i in range(4):
            own = np.mean(out[i] == i)
            assert own == pytest.approx(float(mixed[i, i]) if own < 1 else 1.0, abs=1e-6)
            assert np.all(out[i, 0] == out[i, 1])  # the same box in every frame
    with pytest.raises(ValueError, match="mixup_alpha"):
        augment.mix_videos(video, targets, jax.random.key(0), mixup_alpha=0.0, cutmix_alpha=0.0)


def test_l2_normalised_embedding_except_for_mean_logits():
    from actionclip_jax.models import actionclip  # pylint: disable=import-outside-toplevel

    sizes = {**SIZES, "vision_layers": 1}
    # Weights from a reference CLIP: no random initialisation to compile (CPU compiles of
    # threefry-heavy inits take seconds).
    sd = {k: v.numpy() for k, v in reference.make_reference_clip(sizes, 0).state_dict().items()}
    clip_sizes, clip_params = weights.clip_params_from_state_dict(
        sd, args={**weights.clip_sizes(sd), "activation": "quick_gelu"}
    )
    video = jnp.asarray(np.random.RandomState(0).randn(2, 2, 32, 32, 3).astype(np.float32))
    norms = {}
    for head in ("meanP", "mean_logits"):  # neither head has parameters
        model = actionclip.build({"clip": clip_sizes, "video": {"num_frames": 2, "head": head}})
        emb, frames = jax.jit(
            lambda p, v, model=model: model.apply({"params": p}, v, method=model.embeddings)
        )({"clip": clip_params}, video)
        norms[head] = np.linalg.norm(np.asarray(emb), axis=-1)
        if head == "mean_logits":
            np.testing.assert_allclose(emb, l2_normalize(frames).mean(1), rtol=1e-6)
    np.testing.assert_allclose(norms["meanP"], 1.0, rtol=1e-5)
    assert np.all(norms["mean_logits"] < 1.0)


# ------------------------------------------------------------------------------ list commands


def test_full_lists_take_ids_from_the_shipped_test_list(tmp_path):
    from actionclip_jax import splits  # pylint: disable=import-outside-toplevel
    from data_pipeline import splits as split_lists  # pylint: disable=import-outside-toplevel

    ucf_val = split_lists.resolve_list("ucf101/val1")
    first = open(ucf_val).read().splitlines()[:2] + open(ucf_val).read().splitlines()[-1:]
    src = tmp_path / "UCF-101" / "Some"
    src.mkdir(parents=True)
    for line in first:
        (src / line.split()[0]).write_bytes(b"")
    (src / "v_ApplyEyeMakeup_g25_c01.avi").write_bytes(b"")  # a training-only group
    lines = splits.full_list("ucf101", str(tmp_path / "UCF-101"))
    assert sorted(first + ["v_ApplyEyeMakeup_g25_c01.avi 0"]) == lines

    hmdb_list = split_lists.resolve_list("hmdb51/val1")
    hmdb_val = [ln.split() for ln in open(hmdb_list).read().splitlines()]
    by_id = {}
    for name, label in hmdb_val:
        by_id.setdefault(int(label), []).append(name)
    split_dir = tmp_path / "splits"
    split_dir.mkdir()
    for i, names in by_id.items():  # class c<i>: its test videos (2), one train (1), one unused
        rows = [f"{n} 2" for n in names] + [f"train_{i}.avi 1", f"unused_{i}.avi 0"]
        (split_dir / f"c{i}_test_split1.txt").write_text("\n".join(rows) + "\n")
    lines = splits.full_list("hmdb51", str(split_dir))
    assert len(lines) == len(hmdb_val) + 51
    assert "train_7.avi 7" in lines and not any(ln.startswith("unused_") for ln in lines)


def test_restrict_keeps_a_label_files_classes_relabelled(tmp_path):
    from actionclip_jax import splits  # pylint: disable=import-outside-toplevel

    (tmp_path / "all.csv").write_text("id,name\n0,a\n1,b\n2,c\n")
    (tmp_path / "some.csv").write_text("id,name\n0,c\n1,a\n")
    (tmp_path / "list.txt").write_text("x.mp4 0\ny.mp4 1\nz.mp4 2\n")
    lines = splits.restrict(str(tmp_path / "list.txt"), str(tmp_path / "all.csv"),
                            str(tmp_path / "some.csv"))  # fmt: skip
    assert lines == ["x.mp4 1", "z.mp4 0"]


# ------------------------------------------------------------------------------- weight space


def test_weight_space_average_and_interpolate_write_loadable_directories(tmp_path):
    from actionclip_jax import weight_space  # pylint: disable=import-outside-toplevel

    sizes = {**SIZES, "vision_layers": 1}
    dirs = []
    for seed in (0, 1):
        clip = reference.make_reference_clip(sizes, seed)
        torch.save(ref_ov.openvclip_checkpoint(clip), tmp_path / f"ovc{seed}.pth")
        dirs.append(str(tmp_path / f"dir{seed}"))
        meta = weights.convert(tmp_path / f"ovc{seed}.pth", dirs[-1])
        assert meta["recipe"] == "Open-VCLIP"
    torch.save(reference.make_reference_clip(sizes, 2).state_dict(), tmp_path / "clip.pt")
    params, meta = weight_space.average_command(inputs=dirs)
    weights.save_converted(tmp_path / "avg", meta, params)
    mixed, meta = weight_space.interpolate_command(str(tmp_path / "avg"), str(tmp_path / "clip.pt"),
                                                   0.5)  # fmt: skip
    weights.save_converted(tmp_path / "mixed", meta, mixed)
    model, got, info = load_actionclip(tmp_path / "mixed", return_info=True)
    assert info["kind"] == "open_vclip" and model.frame_stage == "neighbour"
    _, p0 = load_actionclip(dirs[0])
    _, p1 = load_actionclip(dirs[1])
    _, clip_params = weights.load_clip(tmp_path / "clip.pt", activation="quick_gelu")
    want = jax.tree.map(lambda a, b, c: 0.5 * c + 0.25 * a + 0.25 * b, p0["clip"], p1["clip"],
                        clip_params)  # fmt: skip
    for g, w in zip(jax.tree.leaves(got["clip"]), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------ end to end


OPENVCLIP_TEST_RUN = (
    "--config.model.objective=weight_interpolation",
    "--config.model.frame_stage=neighbour",
    "--config.model.head=mean_logits",
    "--config.text.templates=openvclip28",
    "--config.text.classifier=frozen",
    "--config.checkpoint.keep_epochs=True",
    "--config.weight_space.average_epochs=(1,2)",
    "--config.weight_space.interpolate=0.5",
    "--config.data.eval_sampling=window",
    "--config.data.eval_stride=4",
    "--config.data.num_clips=3",
    "--config.eval.view_reduce=logit_sum",
    # θ₀ is sharded like the parameters: with FSDP on the 8 test devices, over them.
    "--config.sharding.fsdp=True",
    "--config.sharding.fsdp_min_size=4096",
)


@pytest.mark.slow
def test_openvclip_run_resumes_with_theta0_from_init_checkpoint_and_scores_swa_mix(
    tmp_path_factory,
):
    import train_helpers as h  # pylint: disable=import-outside-toplevel

    basetemp = tmp_path_factory.getbasetemp()
    sizes = dict(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64,
                 vision_patch_size=8, context_length=32, vocab_size=49408, transformer_width=64,
                 transformer_heads=1, transformer_layers=1)  # configs/test.py's  # fmt: skip
    clip_file = tmp_path_factory.mktemp("ovc_init") / "clip.pt"
    torch.save(reference.make_reference_clip(sizes, 0).state_dict(), clip_file)
    workdir = tmp_path_factory.mktemp("ovc_run") / "run"
    args = (*OPENVCLIP_TEST_RUN, f"--config.init.checkpoint={clip_file}",
            "--config.init.activation=quick_gelu")
    with h.compile_cache(basetemp):
        h.run(basetemp, workdir, *args, "--config.max_steps=3")  # stops at the end of epoch 1
        log = h.run(basetemp, workdir, *args, log=workdir.with_suffix(".2.log"))
    assert "resumed from step 3" in log
    assert "θ₀ (the original CLIP weights) from init.checkpoint" in log
    assert {3, 6} <= set(h.complete_steps(workdir))  # both epoch ends kept
    heldout = h.eval_results(workdir, "eval_results_heldout.json")
    assert heldout["weights"] == ("average of epochs 1-2, interpolated with the original "
                                  "weights θ₀, r=0.5")  # fmt: skip
    assert h.eval_results(workdir)["weights"] == "as trained"  # validation: the raw weights
    # The frozen text tower is CLIP's, to the bit; the image tower has moved.
    params = h.load_params(workdir, 6)["clip"]
    _, clip_params = weights.load_clip(clip_file, activation="quick_gelu")
    np.testing.assert_array_equal(params["ln_final"]["scale"], clip_params["ln_final"]["scale"])
    np.testing.assert_array_equal(params["token_embedding"]["embedding"],
                                  clip_params["token_embedding"]["embedding"])  # fmt: skip
    assert not np.array_equal(params["visual"]["proj"], clip_params["visual"]["proj"])

    # The command averages the same epochs from the run's orbax checkpoints.
    from actionclip_jax import weight_space  # pylint: disable=import-outside-toplevel

    averaged, meta = weight_space.average_command(run=str(workdir), epochs="1,2")
    assert meta["weight_space"] == "average of epochs 1-2"
    want = 0.5 * (h.load_params(workdir, 3)["clip"]["visual"]["proj"] + params["visual"]["proj"])
    np.testing.assert_allclose(averaged["clip"]["visual"]["proj"], want, rtol=1e-6)

    # An evaluation-only run of the workdir scores the same transformed weights.
    with h.compile_cache(basetemp):
        h.run(basetemp, workdir, *args, "--config.mode=eval",
              log=workdir.with_suffix(".eval.log"))  # fmt: skip
    assert h.eval_results(workdir)["weights"] == heldout["weights"]
