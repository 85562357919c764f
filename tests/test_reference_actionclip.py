"""Self-tests of the PyTorch ActionCLIP transcription in ``reference_actionclip.py``."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import reference
import reference_actionclip as ra

SMALL = reference.SMALL
E = SMALL["embed_dim"]  # 96
W = SMALL["vision_width"]  # 128


@pytest.fixture(scope="module")
def clip_model():
    return reference.make_reference_clip(SMALL, seed=0)


@pytest.fixture(scope="module")
def sizes_sd(clip_model):
    """The only state-dict entries VisualPrompt reads (shapes matter, not values)."""
    sd = clip_model.state_dict()
    return {k: sd[k] for k in ("text_projection", "positional_embedding", "ln_final.weight")}


def _fake_sd(embed_dim, text_width=128):
    return {
        "text_projection": torch.zeros(text_width, embed_dim),
        "positional_embedding": torch.zeros(77, text_width),
        "ln_final.weight": torch.zeros(text_width),
    }


def _block_keys(prefix):
    return {
        f"{prefix}.{name}"
        for name in (
            "attn.in_proj_weight",
            "attn.in_proj_bias",
            "attn.out_proj.weight",
            "attn.out_proj.bias",
            "ln_1.weight",
            "ln_1.bias",
            "mlp.c_fc.weight",
            "mlp.c_fc.bias",
            "mlp.c_proj.weight",
            "mlp.c_proj.bias",
            "ln_2.weight",
            "ln_2.bias",
        )
    }


def _expected_keys(head):
    if head == "meanP":
        return set()
    keys = {"frame_position_embeddings.weight"}
    if head == "Conv_1D":
        keys.add("shift.weight")
    elif head == "LSTM":
        keys |= {f"lstm_visual.{n}_l0" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    elif head == "Transf":
        for i in range(6):
            keys |= _block_keys(f"transformer.resblocks.{i}")
    elif head == "Transf_cls":
        keys |= {"transformer.cls_token", "transformer.pos_embed"}
        keys |= {"transformer.transformer_enc.norm.weight", "transformer.transformer_enc.norm.bias"}
        for i in range(6):
            p = f"transformer.transformer_enc.layers.{i}"
            keys |= {
                f"{p}.{n}"
                for n in (
                    "self_attn.in_proj_weight",
                    "self_attn.in_proj_bias",
                    "self_attn.out_proj.weight",
                    "self_attn.out_proj.bias",
                    "linear1.weight",
                    "linear1.bias",
                    "linear2.weight",
                    "linear2.bias",
                    "norm1.weight",
                    "norm1.bias",
                    "norm2.weight",
                    "norm2.bias",
                )
            }
    return keys


@pytest.mark.parametrize("T", [1, 8])
@pytest.mark.parametrize("head", ra.SIM_HEADS)
def test_fusion_shapes_and_keys(sizes_sd, head, T):
    torch.manual_seed(0)
    fusion = ra.VisualPrompt(head, sizes_sd, T).eval()
    sd = fusion.state_dict()
    assert set(sd) == _expected_keys(head)
    if head != "meanP":
        assert sd["frame_position_embeddings.weight"].shape == (77, E)
    if head == "Transf":
        assert sd["transformer.resblocks.0.mlp.c_fc.weight"].shape == (4 * E, E)
        assert fusion.transformer.resblocks[0].attn.num_heads == 192 // 64
    if head == "Transf_cls":
        assert sd["transformer.pos_embed"].shape == (1, T + 1, E)
        assert sd["transformer.transformer_enc.layers.0.linear1.weight"].shape == (2048, E)
    with torch.no_grad():
        out = fusion(torch.randn(3, T, E))
    assert out.shape == (3, E) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_meanP_is_mean(sizes_sd):
    x = torch.randn(2, 5, E)
    torch.testing.assert_close(ra.VisualPrompt("meanP", sizes_sd, 5)(x), x.mean(1))


@pytest.mark.parametrize(
    "embed_dim, left, ident, right",
    [
        (96, range(24), range(24, 72), range(72, 96)),
        (10, range(2), range(2, 7), range(7, 10)),
    ],
)
def test_conv1d_init_pattern(embed_dim, left, ident, right):
    fusion = ra.VisualPrompt("Conv_1D", _fake_sd(embed_dim), 8)
    w = fusion.shift.weight.detach()
    assert w.shape == (embed_dim, 1, 3) and fusion.shift.bias is None
    expected = torch.zeros(embed_dim, 1, 3)
    expected[list(left), 0, 0] = 1
    expected[list(ident), 0, 1] = 1
    expected[list(right), 0, 2] = 1
    torch.testing.assert_close(w, expected, rtol=0, atol=0)


def test_conv1d_reshape_quirk_and_fixed_variant(sizes_sd):
    b, t = 2, 8
    x = torch.randn(b, t, E)
    quirky = ra.VisualPrompt("Conv_1D", sizes_sd, t).eval()
    fixed = ra.VisualPrompt("Conv_1D", sizes_sd, t, conv1d_fixed=True).eval()
    fixed.load_state_dict(quirky.state_dict())
    q = E // 4

    def shifted(seq):  # seq [b, c, t] -> conv with the init kernel, by hand -> [b, t, c]
        s = seq.numpy()
        out = np.zeros_like(s)
        out[:, :q, 1:] = s[:, :q, :-1]  # kernel [1, 0, 0]: x[t-1]
        out[:, q : q + E // 2] = s[:, q : q + E // 2]
        out[:, -q:, :-1] = s[:, -q:, 1:]  # kernel [0, 0, 1]: x[t+1]
        return torch.from_numpy(out).permute(0, 2, 1)

    with torch.no_grad():
        got_fixed = fixed(x)
        got_quirky = quirky(x)
    torch.testing.assert_close(got_fixed, (shifted(x.permute(0, 2, 1)) + x).mean(1))
    torch.testing.assert_close(got_quirky, (shifted(x.reshape(b, E, t)) + x).mean(1))
    assert (got_fixed - got_quirky).abs().max() > 1e-3


def test_tf_layernorm_eps():
    ln = ra.TFLayerNorm(4)
    x = torch.tensor([[1.0, 1.0 + 2e-4, 1.0, 1.0 + 2e-4]], dtype=torch.float64)
    ln = ln.double()
    # var = 1e-8: eps 1e-12 gives ±~1, a 1e-5 eps would give ±0.03.
    np.testing.assert_allclose(ln(x).detach().numpy(), [[-1, 1, -1, 1]], rtol=1e-3)
    assert (
        ra.VisualPrompt("Transf", _fake_sd(64), 4).transformer.resblocks[0].ln_1.variance_epsilon
        == 1e-12
    )


def test_transf_residual_without_positions(clip_model):
    t = 5
    fusion = ra.make_fusion("Transf", clip_model, t, seed=3)
    with torch.no_grad():  # make every block the identity: zero both residual branches
        for blk in fusion.transformer.resblocks:
            for lin in (blk.attn.out_proj, blk.mlp.c_proj):
                lin.weight.zero_()
                lin.bias.zero_()
    x = torch.randn(4, t, E)
    pos = fusion.frame_position_embeddings.weight[:t].detach()
    with torch.no_grad():
        out = fusion(x)
    # (x + pos) through identity blocks, + x (not x + pos), mean over T.
    torch.testing.assert_close(out, 2 * x.mean(1) + pos.mean(0))
    assert (out - (2 * x.mean(1) + 2 * pos.mean(0))).abs().max() > 1e-2


def test_transf_block_matches_clip_block_structure():
    """Same keys as CLIP's pre-LN block; on unit-variance inputs eps 1e-12 vs 1e-5 is negligible."""
    ours = reference.randomize_(ra.TemporalBlock(E, 3), seed=5).eval()
    clip_block = reference.reference_clip_module().ResidualAttentionBlock(E, 3).eval()
    clip_block.load_state_dict(ours.state_dict())
    x = torch.randn(7, 2, E)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), clip_block(x), rtol=1e-4, atol=1e-4)


def test_transf_attends_over_time_not_batch(clip_model):
    fusion = ra.make_fusion("Transf", clip_model, 4, seed=1)
    x = torch.randn(3, 4, E)
    with torch.no_grad():
        full = fusion(x)
        single = fusion(x[1:2])
    torch.testing.assert_close(full[1:2], single, rtol=1e-5, atol=1e-5)


def test_lstm_against_manual_cell(clip_model):
    t = 4
    fusion = ra.make_fusion("LSTM", clip_model, t, seed=2)
    lstm = fusion.lstm_visual
    x = torch.randn(2, t, E, dtype=torch.float64)
    wi, wh = lstm.weight_ih_l0.double().detach(), lstm.weight_hh_l0.double().detach()
    bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).double().detach()
    h = torch.zeros(2, E, dtype=torch.float64)
    c = torch.zeros_like(h)
    outs = []
    for k in range(t):
        i, f, g, o = (x[:, k] @ wi.T + h @ wh.T + bias).chunk(4, dim=-1)  # gate order i, f, g, o
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    expected = (torch.stack(outs, 1) + x).mean(1)
    with torch.no_grad():
        got = fusion(x.float())
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-5)


def test_transf_cls_is_post_ln_encoder_and_has_dropout(clip_model):
    t = 3
    fusion = ra.make_fusion("Transf_cls", clip_model, t, seed=4)
    agg = fusion.transformer
    x = torch.randn(2, t, E, dtype=torch.float64)

    def ln(v, m):
        return nn.functional.layer_norm(v, (E,), m.weight.double(), m.bias.double(), 1e-5)

    with torch.no_grad():
        h = torch.cat([agg.cls_token.double().expand(2, 1, E), x], 1) + agg.pos_embed.double()
        heads, hd = 8, E // 8

        def split(a):
            return a.reshape(2, t + 1, heads, hd).transpose(1, 2)

        for layer in agg.transformer_enc.layers:
            att = layer.self_attn
            q, k, v = (h @ att.in_proj_weight.double().T + att.in_proj_bias.double()).chunk(3, -1)
            w = (split(q) @ split(k).transpose(-1, -2) / math.sqrt(hd)).softmax(-1)
            a = (w @ split(v)).transpose(1, 2).reshape(2, t + 1, E)
            a = a @ att.out_proj.weight.double().T + att.out_proj.bias.double()
            h = ln(h + a, layer.norm1)  # post-LN
            f = torch.relu(h @ layer.linear1.weight.double().T + layer.linear1.bias.double())
            f = f @ layer.linear2.weight.double().T + layer.linear2.bias.double()
            h = ln(h + f, layer.norm2)
        expected = ln(h, agg.transformer_enc.norm)[:, 0]
        got = fusion(x.float())
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-4)
    fusion.train()
    with torch.no_grad():
        assert (fusion(x.float()) - fusion(x.float())).abs().max() > 0  # dropout 0.1 is active
    assert agg.transformer_enc.layers[0].dropout.p == 0.1


def test_temporal_shift_moves_documented_channels():
    n, t, c, grid = 2, 4, 16, 2
    fold = c // 8
    x = torch.randn(1 + grid * grid, n * t, c)
    wrapped = ra.TemporalShiftViT(nn.Identity(), n_segment=t, n_div=8)
    out = wrapped(x)
    torch.testing.assert_close(out[0], x[0], rtol=0, atol=0)  # CLS untouched
    xp = x[1:].reshape(-1, n, t, c)
    op = out[1:].reshape(-1, n, t, c)
    torch.testing.assert_close(op[:, :, :-1, :fold], xp[:, :, 1:, :fold], rtol=0, atol=0)
    assert (op[:, :, -1, :fold] == 0).all()
    torch.testing.assert_close(
        op[:, :, 1:, fold : 2 * fold], xp[:, :, :-1, fold : 2 * fold], rtol=0, atol=0
    )
    assert (op[:, :, 0, fold : 2 * fold] == 0).all()
    torch.testing.assert_close(op[..., 2 * fold :], xp[..., 2 * fold :], rtol=0, atol=0)


def test_wrap_temporal_shift_keys_and_forward():
    T = 2
    plain = reference.make_reference_clip(SMALL, seed=0)
    shifted = ra.make_shift_clip(SMALL, T=T, seed=0)
    keys = set(shifted.state_dict())
    assert "visual.transformer.resblocks.0.net.attn.in_proj_weight" in keys
    assert not any(k.startswith("visual.transformer.resblocks.0.attn") for k in keys)
    assert "transformer.resblocks.0.attn.in_proj_weight" in keys  # text tower untouched
    assert keys == set(ra.shift_state_dict_keys(plain.state_dict()))
    shifted.load_state_dict(ra.shift_state_dict_keys(plain.state_dict()))
    video = torch.randn(2, T, 3, 112, 112)
    meanp = ra.VisualPrompt("meanP", {}, T)
    with torch.no_grad():
        got = ra.ActionCLIPReference(shifted, meanp, T).encode_video(video)
        base = ra.ActionCLIPReference(plain, meanp, T).encode_video(video)
    assert got.shape == (2, E)
    assert (got - base).abs().max() > 1e-3  # the shift does change the features


def test_joint_visual():
    T = 3
    model = ra.make_joint_clip(SMALL, T=T, seed=0)
    sd = model.state_dict()
    assert sd["visual.time_embedding"].shape == (T, W)
    video = torch.randn(2, T, 3, 112, 112)
    fusion = ra.VisualPrompt("meanP", {}, T)
    ref = ra.ActionCLIPReference(model, fusion, T)
    with torch.no_grad():
        out = ref.encode_video(video)
        swapped = ref.encode_video(video[:, [2, 0, 1]])
        model.visual.time_embedding.zero_()
        out0 = ref.encode_video(video)
        swapped0 = ref.encode_video(video[:, [2, 0, 1]])
    assert out.shape == (2, E)
    # Without the time embedding the CLS output is invariant to the frame order, with it not.
    torch.testing.assert_close(out0, swapped0, rtol=1e-4, atol=1e-4)
    assert (out - swapped).abs().max() > 1e-3
    # T = 1 with a zero time embedding is plain per-frame CLIP.
    plain = reference.make_reference_clip(SMALL, seed=0)
    joint1 = ra.make_joint_clip(SMALL, T=1, seed=0)
    with torch.no_grad():
        joint1.visual.time_embedding.zero_()
        frames = torch.randn(2, 3, 112, 112)
        torch.testing.assert_close(
            joint1.encode_image(frames), plain.encode_image(frames), rtol=1e-4, atol=1e-4
        )


def test_logits(clip_model):
    T = 2
    fusion = ra.make_fusion("Transf", clip_model, T, seed=0)
    model = ra.ActionCLIPReference(clip_model, fusion, T)
    tokens = ra.tokenize_reference(["a photo of action abseiling", "brush hair, an action", "x"])
    with torch.no_grad():
        li, lt = model.logits(torch.randn(2, T, 3, 112, 112), tokens)
    assert li.shape == (2, 3) and lt.shape == (3, 2)
    torch.testing.assert_close(lt, li.T)
    assert li.abs().max() <= clip_model.logit_scale.exp() * (1 + 1e-5)


def test_tokenizer_sample_ids():
    ids = ra.tokenize_reference(["a photo of action abseiling", "brush hair, an action"])
    assert ids.shape == (2, 77)
    assert ids[0, :9].tolist() == [49406, 320, 1125, 539, 1816, 596, 567, 3299, 49407]
    assert ids[1, :7].tolist() == [49406, 8594, 2225, 267, 550, 1816, 49407]
    assert (ids[0, 9:] == 0).all()


def test_kl_loss_hand_computation():
    labels = [0, 1, 0]
    np.testing.assert_array_equal(ra.gen_label(labels), [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    B = 3
    # Zero logits: p = 1/B everywhere; rows with m positives have q_pos = e^10 / (m e^10 + B - m).
    zeros = np.zeros((B, B))
    e10 = math.exp(10.0)
    rows = []
    for m in (2, 1, 2):
        z = m * e10 + B - m
        qp, qn = e10 / z, 1 / z
        rows.append(m * qp * math.log(qp * B) + (B - m) * qn * math.log(qn * B))
    expected = sum(rows) / B
    assert ra.kl_loss_reference(zeros, zeros, labels) == pytest.approx(expected, rel=1e-12)
    # Random logits: batchmean KL per direction, the two directions averaged.
    rng = np.random.RandomState(0)
    li = rng.randn(B, B) * 5
    lt = li.T.copy() + 0.1
    q = np.exp(10 * ra.gen_label(labels))
    q /= q.sum(1, keepdims=True)

    def kl(logits):
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        return (q * (np.log(q) - logp)).sum() / B

    got = ra.kl_loss_reference(torch.from_numpy(li).float(), lt, labels)
    li32 = torch.from_numpy(li).float().double().numpy()
    assert got == pytest.approx((kl(li32) + kl(lt)) / 2, rel=1e-10)


def test_checkpoint_layout(tmp_path, clip_model):
    T = 2
    fusion = ra.make_fusion("Transf", clip_model, T, seed=0)
    path = tmp_path / "last_model.pt"
    ra.save_actionclip_checkpoint(path, clip_model, fusion, epoch=7)
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {
        "epoch",
        "model_state_dict",
        "fusion_model_state_dict",
        "optimizer_state_dict",
    }
    assert ckpt["epoch"] == 7
    msd, fsd = ckpt["model_state_dict"], ckpt["fusion_model_state_dict"]
    half = (
        "visual.conv1.weight",
        "visual.proj",
        "text_projection",
        "visual.transformer.resblocks.0.attn.in_proj_weight",
        "visual.transformer.resblocks.0.attn.out_proj.bias",
        "transformer.resblocks.1.mlp.c_fc.weight",
    )
    single = (
        "logit_scale",
        "visual.class_embedding",
        "visual.positional_embedding",
        "positional_embedding",
        "token_embedding.weight",
        "ln_final.weight",
        "visual.ln_pre.bias",
    )
    assert all(msd[k].dtype == torch.float16 for k in half)
    assert all(msd[k].dtype == torch.float32 for k in single)
    assert set(msd) == set(clip_model.state_dict())
    assert set(fsd) == {"module." + k for k in fusion.state_dict()}
    assert fsd["module.frame_position_embeddings.weight"].shape == (77, E)
    assert all(v.dtype == torch.float32 for v in fsd.values())
    groups = ckpt["optimizer_state_dict"]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([5e-6, 5e-6, 5e-5])
    assert groups[0]["betas"] == (0.9, 0.98) and groups[0]["weight_decay"] == 0.2
    assert len(ckpt["optimizer_state_dict"]["state"]) == sum(len(g["params"]) for g in groups)
    # Loads back strictly, the fusion model through DataParallel as in test.py.
    fresh = reference.make_reference_clip(SMALL, seed=1)
    fresh.load_state_dict(msd)
    fresh_fusion = nn.DataParallel(ra.VisualPrompt("Transf", fresh.state_dict(), T))
    fresh_fusion.load_state_dict(fsd)
    torch.testing.assert_close(fresh.visual.proj, clip_model.visual.proj.half().float())

    # Shift and joint models keep their extra key structure.
    shifted = ra.make_shift_clip(SMALL, T=T, seed=0)
    ra.save_actionclip_checkpoint(tmp_path / "s.pt", shifted, fusion, with_optimizer=False)
    keys = torch.load(tmp_path / "s.pt", weights_only=True)["model_state_dict"]
    assert keys["visual.transformer.resblocks.2.net.mlp.c_proj.weight"].dtype == torch.float16
    joint = ra.make_joint_clip(SMALL, T=T, seed=0)
    meanp = ra.VisualPrompt("meanP", {}, T)
    ra.save_actionclip_checkpoint(tmp_path / "j.pt", joint, meanp, with_optimizer=False)
    jck = torch.load(tmp_path / "j.pt", weights_only=True)
    assert jck["model_state_dict"]["visual.time_embedding"].dtype == torch.float32
    assert jck["model_state_dict"]["visual.time_embedding"].shape == (T, W)
    assert jck["fusion_model_state_dict"] == {}


def test_preprocessing_geometry():
    assert ra.center_crop_box(257, 256, 224) == (16, 16, 240, 240)  # round(16.5) = 16
    assert ra.center_crop_box(259, 256, 224) == (18, 16, 242, 240)  # round(17.5) = 18
    img = Image.fromarray(np.zeros((100, 150, 3), np.uint8))
    assert ra.resize_short_side(img, 256).size == (384, 256)
    img = Image.fromarray(np.zeros((171, 128, 3), np.uint8))
    assert ra.resize_short_side(img, 128) is img
    assert ra.resize_short_side(Image.fromarray(np.zeros((300, 257, 3), np.uint8)), 256).size == (
        256,
        int(256 * 300 / 257),
    )
    rng = np.random.RandomState(0)
    frames = rng.randint(0, 256, size=(2, 120, 161, 3), dtype=np.uint8)
    x = ra.preprocess_frames_reference(frames, input_size=112)  # scale 128
    assert x.shape == (2, 3, 112, 112) and x.dtype == torch.float32
    img = Image.fromarray(frames[1]).resize((int(128 * 161 / 120), 128), Image.BICUBIC)
    left, top = round((171 - 112) / 2), 8  # 29.5 -> 30
    crop = np.asarray(img)[top : top + 112, left : left + 112].astype(np.float32) / 255
    expected = (crop - np.array(ra.INPUT_MEAN)) / np.array(ra.INPUT_STD)
    np.testing.assert_allclose(x[1].permute(1, 2, 0).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_eval_probs(clip_model):
    T = 2
    fusion = ra.make_fusion("Transf", clip_model, T, seed=0)
    classes = ["abseiling", "brush hair", "ApplyEyeMakeup"]
    templates = ra.ACTIONCLIP_TEMPLATES
    assert len(templates) == 16
    frames = np.random.RandomState(0).randint(0, 256, size=(T, 130, 150, 3), dtype=np.uint8)
    probs = ra.reference_eval_probs(clip_model, fusion, frames, classes, templates, T, 112)
    assert probs.shape == (3,)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    # The same by a per-template loop.
    model = ra.ActionCLIPReference(clip_model, fusion, T)
    with torch.no_grad():
        v = model.encode_video(ra.preprocess_frames_reference(frames, 112)[None])[0]
        v = v / v.norm()
        per_template = []
        for tmpl in templates:
            t = model.encode_text(ra.tokenize_reference([tmpl.format(c) for c in classes]))
            t = t / t.norm(dim=-1, keepdim=True)
            per_template.append((100 * t @ v).softmax(0))
    np.testing.assert_allclose(probs, torch.stack(per_template).mean(0).numpy(), rtol=1e-4)
    tokens = ra.text_prompt_tokens(classes, templates)
    assert tokens.shape == (48, 77)
    torch.testing.assert_close(tokens[3], ra.tokenize_reference("a picture of action abseiling")[0])
