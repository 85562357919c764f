"""The ActionCLIP video model matches an independent PyTorch transcription of the original."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import reference
import reference_actionclip as ref_ac
from actionclip_jax import CheckpointError, augment, load_actionclip, losses, prompts, scoring
from actionclip_jax.tokenizer import tokenize
from actionclip_jax.models.actionclip import ActionCLIP
from actionclip_jax.models.clip import l2_normalize

T = 8
TOL = 1e-4
TINY = dict(
    embed_dim=64,
    image_resolution=32,
    vision_layers=1,
    vision_width=64,
    vision_patch_size=16,
    context_length=77,
    vocab_size=49408,
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=1,
)

# (frame stage, original head name, JAX head, conv1d_original)
PROMPTS = [
    ("none", "meanP", "meanP", False),
    ("none", "Conv_1D", "conv1d", True),
    ("none", "Conv_1D", "conv1d", False),
    ("none", "LSTM", "lstm", False),
    ("none", "Transf", "transf", False),
    ("none", "Transf_cls", "transf_cls", False),
    ("shift", "meanP", "meanP", False),
    ("joint", "meanP", "meanP", False),
]


def _reference_clip(stage, seed=0):
    if stage == "shift":
        return ref_ac.make_shift_clip(reference.SMALL, T, seed)
    if stage == "joint":
        return ref_ac.make_joint_clip(reference.SMALL, T, seed)
    return reference.make_reference_clip(reference.SMALL, seed)


@pytest.fixture(scope="module")
def video():
    return np.random.RandomState(5).randn(2, T, 112, 112, 3).astype(np.float32)


def _torch_video(video):
    return torch.from_numpy(np.ascontiguousarray(video.transpose(0, 1, 4, 2, 3)))


@pytest.mark.parametrize("stage,sim_head,head,original", PROMPTS)
def test_visual_prompt_matches_transcription(tmp_path, video, stage, sim_head, head, original):
    clip_t = _reference_clip(stage)
    fixed = sim_head == "Conv_1D" and not original
    fusion_t = ref_ac.make_fusion(sim_head, clip_t, T, seed=3, conv1d_fixed=fixed)
    path = tmp_path / "ckpt.pt"
    ref_ac.save_actionclip_checkpoint(path, clip_t, fusion_t, fp16=False, with_optimizer=False)

    overrides = {} if sim_head != "Conv_1D" else {"conv1d_original": original}
    model, params = load_actionclip(path, num_frames=T, **overrides)
    assert (model.frame_stage, model.head) == (stage, head)
    out = model.apply({"params": params}, video, method=model.encode_video)
    with torch.no_grad():
        want = ref_ac.ActionCLIPReference(clip_t, fusion_t, T).encode_video(_torch_video(video))
    assert out.shape == (2, reference.SMALL["embed_dim"])
    assert reference.rel_err(out, want.numpy()) <= TOL


def test_conv1d_reshape_quirk_differs_from_the_fixed_transpose(tmp_path, video):
    clip_t = _reference_clip("none")
    fusion_t = ref_ac.make_fusion("Conv_1D", clip_t, T, seed=3)
    path = tmp_path / "ckpt.pt"
    ref_ac.save_actionclip_checkpoint(path, clip_t, fusion_t, fp16=False, with_optimizer=False)
    original, params = load_actionclip(path, num_frames=T)  # original checkpoints: original mode
    fixed, _ = load_actionclip(path, num_frames=T, conv1d_original=False)
    assert original.conv1d_original and not fixed.conv1d_original
    a = original.apply({"params": params}, video, method="encode_video")
    b = fixed.apply({"params": params}, video, method="encode_video")
    assert not np.allclose(a, b, atol=1e-3)


def test_original_mixed_precision_checkpoint_gives_the_transcriptions_features(tmp_path, video):
    clip_t = _reference_clip("none", seed=11)
    fusion_t = ref_ac.make_fusion("Transf", clip_t, T, seed=12)
    path = tmp_path / "actionclip_fp16.pt"
    saved = ref_ac.save_actionclip_checkpoint(path, clip_t, fusion_t, epoch=7, fp16=True)
    assert saved["model_state_dict"]["visual.conv1.weight"].dtype == torch.float16
    assert all(k.startswith("module.") for k in saved["fusion_model_state_dict"])

    # The reference computes in fp32 with the same fp16-rounded CLIP weights the file holds.
    clip_t.load_state_dict({k: v.float() for k, v in saved["model_state_dict"].items()})
    model, params = load_actionclip(path, num_frames=T)
    out = model.apply({"params": params}, video, method=model.encode_video)
    with torch.no_grad():
        want = ref_ac.ActionCLIPReference(clip_t, fusion_t, T).encode_video(_torch_video(video))
    assert reference.rel_err(out, want.numpy()) <= TOL


def test_converted_actionclip_directory_round_trips(tmp_path, video):
    from actionclip_jax import weights

    clip_t = _reference_clip("shift", seed=2)
    fusion_t = ref_ac.make_fusion("meanP", clip_t, T)
    path = tmp_path / "shift.pt"
    ref_ac.save_actionclip_checkpoint(path, clip_t, fusion_t, fp16=True, with_optimizer=False)
    meta = weights.convert(path, tmp_path / "converted")
    assert meta["video"]["frame_stage"] == "shift" and meta["video"]["head"] == "meanP"
    m1, p1 = load_actionclip(path, num_frames=T)
    m2, p2 = load_actionclip(tmp_path / "converted", num_frames=T)
    assert m1 == m2
    np.testing.assert_array_equal(
        m1.apply({"params": p1}, video, method="encode_video"),
        m2.apply({"params": p2}, video, method="encode_video"),
    )


def test_openai_clip_file_loads_as_a_mean_pooling_video_model(small_clip_files, video):
    model, params = load_actionclip(small_clip_files["torchscript"], num_frames=T)
    assert (model.frame_stage, model.head) == ("none", "meanP")
    clip_model, clip_params = __import__("actionclip_jax").load_clip(
        small_clip_files["torchscript"]
    )
    frames = clip_model.apply({"params": clip_params}, video.reshape(-1, 112, 112, 3),
                              method="encode_image")  # fmt: skip
    np.testing.assert_allclose(
        model.apply({"params": params}, video, method="encode_video"),
        np.asarray(frames).reshape(2, T, -1).mean(1),
        rtol=1e-5,
        atol=1e-5,
    )


def test_frame_position_table_shorter_than_t_is_a_clear_error(tmp_path):
    clip_t = _reference_clip("none")
    fusion_t = ref_ac.make_fusion("Transf", clip_t, T)
    sd = ref_ac.save_actionclip_checkpoint(tmp_path / "a.pt", clip_t, fusion_t, fp16=False)
    key = "module.frame_position_embeddings.weight"
    sd["fusion_model_state_dict"][key] = sd["fusion_model_state_dict"][key][:4]  # as mmaction2
    torch.save(sd, tmp_path / "short_table.pt")
    with pytest.raises(CheckpointError, match=r"short_table.pt.*4 rows.*num_frames=8"):
        load_actionclip(tmp_path / "short_table.pt", num_frames=8)
    model, _ = load_actionclip(tmp_path / "short_table.pt", num_frames=4)
    assert model.position_rows == 4


def test_more_than_77_frames_is_a_clear_error(small_clip_files):
    with pytest.raises(CheckpointError, match=r"77 rows.*num_frames=96"):
        load_actionclip(small_clip_files["actionclip"], num_frames=96, head="transf")


def test_joint_checkpoint_fixes_its_number_of_frames(tmp_path):
    clip_t = _reference_clip("joint")
    fusion_t = ref_ac.make_fusion("meanP", clip_t, T)
    ref_ac.save_actionclip_checkpoint(tmp_path / "j.pt", clip_t, fusion_t, with_optimizer=False)
    with pytest.raises(CheckpointError, match=r"trained with 8 frames.*time embedding"):
        load_actionclip(tmp_path / "j.pt", num_frames=16)
    assert load_actionclip(tmp_path / "j.pt")[0].num_frames == 8


def _init(head, stage, t, sizes=TINY):
    model = ActionCLIP(sizes, num_frames=t, frame_stage=stage, head=head)
    r = sizes["image_resolution"]
    video = jnp.asarray(np.random.RandomState(t).randn(4, t, r, r, 3), jnp.float32)
    tokens = prompts.prompt_tokens(["a", "b", "c", "d"])[0]
    params = model.init(jax.random.key(0), video, tokens)["params"]
    return model, params, video, tokens


@pytest.mark.parametrize("head", ["meanP", "conv1d", "lstm", "transf", "transf_cls"])
@pytest.mark.parametrize("t", [1, 8, 16, 32])
def test_output_shapes_for_every_t(head, t):
    model, params, video, _ = _init(head, "none", t)
    out = jax.jit(lambda p, v: model.apply({"params": p}, v, method=model.encode_video))(
        params, video
    )
    assert out.shape == (4, TINY["embed_dim"]) and np.isfinite(np.asarray(out)).all()


@pytest.mark.parametrize(
    "stage,head",
    [("none", h) for h in ("meanP", "conv1d", "lstm", "transf", "transf_cls")]
    + [("shift", "meanP"), ("joint", "meanP")],
)
def test_gradients_reach_every_parameter(stage, head):
    model, params, video, tokens = _init(head, stage, 4)
    labels = jnp.array([0, 1, 2, 1])

    def loss_fn(p):
        logits, _ = model.apply({"params": p}, video, tokens[labels], train=True,
                                rngs={"dropout": jax.random.key(1)})  # fmt: skip
        return losses.kl_loss(logits, labels)

    grads = jax.grad(loss_fn)(params)
    flat = jax.tree_util.tree_leaves_with_path(grads)
    dead = [jax.tree_util.keystr(k) for k, g in flat if not np.any(np.asarray(g) != 0)]
    assert not dead, f"no gradient reaches {dead}"


def test_kl_loss_hand_computed_with_repeated_labels():
    labels = jnp.array([0, 1, 0])
    logits = jnp.array([[2.0, 0.0, 1.0], [0.0, 3.0, -1.0], [1.0, 0.5, 0.0]])
    e10 = np.exp(10.0)
    # Rows 0 and 2 have two positives (samples 0 and 2), row 1 one.
    q = np.array(
        [
            [e10, 1.0, e10] / (2 * e10 + 1),
            [1.0, e10, 1.0] / (e10 + 2),
            [e10, 1.0, e10] / (2 * e10 + 1),
        ]
    )

    def kl(lg):
        lg = np.asarray(lg, np.float64)
        logp = lg - np.log(np.exp(lg).sum(1, keepdims=True))
        return float(np.sum(q * (np.log(q) - logp)) / 3)

    want = 0.5 * (kl(logits) + kl(logits.T))
    assert abs(float(losses.kl_loss(logits, labels)) - want) < 1e-6
    ref = ref_ac.kl_loss_reference(
        torch.tensor(np.asarray(logits)), torch.tensor(np.asarray(logits.T)), np.asarray(labels)
    )
    assert abs(float(losses.kl_loss(logits, labels)) - ref) < 1e-6


def test_kl_loss_is_fp32_for_bf16_logits():
    logits = jnp.ones((4, 4), jnp.bfloat16)
    assert losses.kl_loss(logits, jnp.arange(4)).dtype == jnp.float32


def test_prompt_tables_end_after_the_longest_prompt_cutting_only_padding():
    names = ["riding a bike", "archery"]
    table = prompts.prompt_tokens(names)
    full = tokenize([t.format(n) for t in prompts.TEMPLATES for n in names]).reshape(16, 2, 77)
    assert table.shape == (16, 2, prompts.TOKEN_MULTIPLE)
    np.testing.assert_array_equal(table, full[..., : prompts.TOKEN_MULTIPLE])
    assert not full[..., prompts.TOKEN_MULTIPLE :].any()
    # Longer prompts keep a multiple of 16 tokens, at most the context length.
    assert prompts.prompt_tokens(["x " * 20], ("{}",)).shape == (1, 1, 32)
    assert prompts.prompt_tokens(["x " * 70], ("{}",)).shape == (1, 1, 77)


def test_template_sampling_is_uniform_and_keyed_by_dataset_index():
    table = prompts.prompt_tokens(["riding a bike", "archery"])
    labels = jnp.zeros((4000,), jnp.int32)
    index = jnp.arange(4000)
    # The train step's draw: one key per sample, folded from its dataset index.
    keys = augment.per_sample_keys(jax.random.key(0), index)
    toks = np.asarray(prompts.sample_prompt_tokens(keys, table, labels))
    which = (toks[:, None, :] == np.asarray(table[:, 0])[None]).all(-1).argmax(1)
    counts = np.bincount(which, minlength=16)
    assert counts.min() > 4000 / 16 - 4.5 * np.sqrt(4000 / 16)
    assert counts.max() < 4000 / 16 + 4.5 * np.sqrt(4000 / 16)
    # A sample's template does not depend on its row: the batch reversed draws the same.
    rev = augment.per_sample_keys(jax.random.key(0), index[::-1])
    np.testing.assert_array_equal(np.asarray(prompts.sample_prompt_tokens(rev, table, labels)),
                                  toks[::-1])  # fmt: skip


def test_eval_scoring_is_softmax_per_template_then_mean():
    rng = np.random.RandomState(0)
    v = l2_normalize(jnp.asarray(rng.randn(3, 2, 8), jnp.float32))  # [B, V, E]
    t = l2_normalize(jnp.asarray(rng.randn(16, 5, 8), jnp.float32))  # [K, C, E]
    # What the evaluator computes: per-view template logits, then its view reduction.
    got = np.asarray(scoring.view_scores(scoring.template_logits(v, t)))
    logits = 100 * np.einsum("bve,kce->bvkc", np.asarray(v), np.asarray(t))
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(got, p.mean(2).mean(1), rtol=1e-5, atol=1e-6)


def test_encode_video_runs_sharded_on_eight_devices():
    devices = jax.devices()
    assert len(devices) == 8, "conftest sets --xla_force_host_platform_device_count=8"
    model, params, _, _ = _init("transf", "shift", 4)
    video = jnp.asarray(np.random.RandomState(0).randn(8, 4, 32, 32, 3), jnp.float32)
    mesh = Mesh(np.array(devices), ("data",))
    sharded = jax.device_put(video, NamedSharding(mesh, P("data")))
    replicated = jax.device_put(params, NamedSharding(mesh, P()))
    encode = jax.jit(
        lambda p, v: model.apply({"params": p}, v, method=model.encode_video),
        out_shardings=NamedSharding(mesh, P("data")),
    )
    out = encode(replicated, sharded)
    assert out.sharding.spec == P("data")
    np.testing.assert_allclose(
        out, model.apply({"params": params}, video, method=model.encode_video), rtol=1e-5,
        atol=1e-5,
    )  # fmt: skip
