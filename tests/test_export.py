"""Export to the original ActionCLIP's format: exact round trips, and the original runs the file."""

import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
import torch
from torch import nn

import reference
import reference_actionclip as ra
from actionclip_jax import CheckpointError, load_actionclip
from actionclip_jax import export, weights
from actionclip_jax.models import actionclip

SMALL = reference.SMALL
T = 2
_SIM_HEAD = {"meanP": "meanP", "transf": "Transf", "lstm": "LSTM", "conv1d": "Conv_1D",
             "transf_cls": "Transf_cls"}  # fmt: skip


def _original_checkpoint(path, head, stage, seed=0):
    """A checkpoint as the original saves it (fp32), from the PyTorch transcription."""
    if stage == "shift":
        clip = ra.make_shift_clip(SMALL, T=T, seed=seed)
    elif stage == "joint":
        clip = ra.make_joint_clip(SMALL, T=T, seed=seed)
    else:
        clip = reference.make_reference_clip(SMALL, seed=seed)
    fusion = ra.make_fusion(_SIM_HEAD[head], clip, T, seed=seed + 1)
    return ra.save_actionclip_checkpoint(path, clip, fusion, fp16=False, with_optimizer=False)


def _leaves(params):
    return {
        "/".join(k.key for k in p): np.asarray(v)
        for p, v in jax.tree_util.tree_leaves_with_path(params)
    }


@pytest.mark.parametrize(
    "head, stage",
    [("transf", "none"), ("lstm", "none"), ("conv1d", "none"), ("transf_cls", "none"),
     ("meanP", "shift"), ("meanP", "joint")],
)  # fmt: skip
def test_import_export_import_is_bit_exact(tmp_path, head, stage):
    saved = _original_checkpoint(tmp_path / "original.pt", head, stage)
    summary = export.export_actionclip_pt(tmp_path / "original.pt", tmp_path / "exported.pt")
    assert (summary["head"], summary["frame_stage"]) == (head, stage)
    exported = torch.load(tmp_path / "exported.pt", weights_only=True)
    assert set(exported) == {"epoch", "model_state_dict", "fusion_model_state_dict"}
    for part in ("model_state_dict", "fusion_model_state_dict"):
        assert set(exported[part]) == set(saved[part])
        for k, v in saved[part].items():
            assert exported[part][k].dtype == torch.float32
            if k == "module.frame_position_embeddings.weight" and head != "transf":
                # Unread by the original for this head, dropped on import: written as zeros.
                assert exported[part][k].shape == v.shape and not exported[part][k].any()
                continue
            torch.testing.assert_close(exported[part][k], v, rtol=0, atol=0, msg=k)
    _, before = load_actionclip(tmp_path / "original.pt")
    _, after = load_actionclip(tmp_path / "exported.pt")
    before, after = _leaves(before), _leaves(after)
    assert set(before) == set(after)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def _random_converted_dir(path, head, stage, seed, head_layers=6):
    """A converted directory of random weights made in JAX, so no import code is involved."""
    sizes = {**SMALL, "activation": "quick_gelu", "ln_epsilon": 1e-5}
    video = dict(num_frames=T, frame_stage=stage, head=head, position_rows=77,
                 conv1d_original=head == "conv1d", head_layers=head_layers)  # fmt: skip
    model = weights.build_actionclip(sizes, video)
    shapes = actionclip.abstract_params(model)
    rng = np.random.RandomState(seed)

    def draw(path, x):
        # Every tensor non-trivial (an initial LayerNorm or zero bias would hide a lost tensor),
        # on a scale that keeps the features well-conditioned; in numpy, which is much quicker
        # here than running model.init over the whole model.
        n = np.asarray(rng.randn(*x.shape), np.float32)
        name = path[-1].key
        if name == "scale":
            return 1.0 + 0.1 * n
        if x.ndim <= 1 or name == "embedding":
            return 0.05 * n
        return n * float(np.prod(x.shape[:-1])) ** -0.5

    params = jax.tree_util.tree_map_with_path(draw, shapes)
    meta = {"clip": sizes, "video": video, "source": "test", "source_kind": "test"}
    weights.save_converted(path, meta, params)
    return model, params


def _original_model(ckpt, head, stage):
    """The PyTorch transcription of the original, loaded as its train.py/test.py do: strictly."""
    if stage == "shift":
        clip = ra.make_shift_clip(SMALL, T=T, seed=5)
    else:
        clip = reference.make_reference_clip(SMALL, seed=5)
    clip.load_state_dict(ckpt["model_state_dict"])
    fusion = nn.DataParallel(ra.VisualPrompt(_SIM_HEAD[head], clip.state_dict(), T))
    fusion.load_state_dict(ckpt["fusion_model_state_dict"])
    return ra.ActionCLIPReference(clip, fusion.module.eval(), T).eval()


@pytest.mark.parametrize(
    "head, stage, layers", [("transf", "none", 6), ("lstm", "shift", 6), ("transf", "shift", 2)]
)
def test_exported_file_runs_in_the_original_with_the_same_features(
    tmp_path, head, stage, layers, sample_tokens
):
    # A 2-block transf head (the demo's) is written with 4 identity blocks: the original builds 6.
    model, params = _random_converted_dir(tmp_path / "converted", head, stage, 3, layers)
    out = subprocess.run(
        [sys.executable, "-m", "actionclip_jax.convert", "--to=actionclip-pt",
         f"--checkpoint={tmp_path / 'converted'}", f"--output={tmp_path / 'model.pt'}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    original = _original_model(torch.load(tmp_path / "model.pt", weights_only=True), head, stage)
    video = np.random.RandomState(0).randn(2, T, 112, 112, 3).astype(np.float32)
    encode = jax.jit(lambda p, v, t: (model.apply({"params": p}, v, method=model.encode_video),
                                      model.apply({"params": p}, t, method=model.encode_text)))
    ours, ours_text = encode(params, video, sample_tokens)  # one compile, not one per op
    with torch.no_grad():
        theirs = original.encode_video(torch.from_numpy(video.transpose(0, 1, 4, 2, 3).copy()))
        theirs_text = original.encode_text(torch.from_numpy(np.asarray(sample_tokens, np.int64)))
    assert reference.rel_err(ours, theirs.numpy()) <= 1e-4
    assert reference.rel_err(ours_text, theirs_text.numpy()) <= 1e-4


def test_fp16_export_has_the_originals_dtype_layout(tmp_path):
    clip = reference.make_reference_clip(SMALL, seed=0)
    fusion = ra.make_fusion("Transf", clip, T, seed=1)
    ra.save_actionclip_checkpoint(
        tmp_path / "fp32.pt", clip, fusion, fp16=False, with_optimizer=False
    )
    theirs = ra.save_actionclip_checkpoint(tmp_path / "fp16.pt", clip, fusion, with_optimizer=False)
    export.export_actionclip_pt(tmp_path / "fp32.pt", tmp_path / "out16.pt", dtype="fp16")
    export.export_actionclip_pt(tmp_path / "fp32.pt", tmp_path / "out32.pt")
    ours16 = torch.load(tmp_path / "out16.pt", weights_only=True)
    ours32 = torch.load(tmp_path / "out32.pt", weights_only=True)
    for part in ("model_state_dict", "fusion_model_state_dict"):
        assert {k: v.dtype for k, v in ours16[part].items()} == {
            k: v.dtype for k, v in theirs[part].items()
        }
        for k, v in ours16[part].items():  # fp32 values rounded once, exactly as the original
            torch.testing.assert_close(v, ours32[part][k].to(v.dtype), rtol=0, atol=0)


def _model(head="transf", stage="none", **changes):
    sizes = {**SMALL, "activation": "quick_gelu", "ln_epsilon": 1e-5}
    video = dict(num_frames=T, frame_stage=stage, head=head, position_rows=77,
                 conv1d_original=True, head_layers=6)  # fmt: skip
    for k, v in changes.items():
        (sizes if k in sizes or k == "vision_heads" else video)[k] = v
    return weights.build_actionclip(sizes, video)


@pytest.mark.parametrize(
    "changes, says",
    [
        (dict(activation="gelu"), r"its MLPs use gelu, the original's CLIP QuickGELU"),
        (dict(ln_epsilon=1e-6), r"LayerNorm epsilon is 1e-06"),
        (dict(vision_heads=4), r"image tower has 4 heads"),
        (dict(head_layers=7), r"transf head has 7 blocks, more than the original's 6"),
        (dict(head="transf_cls", head_layers=2), r"transf_cls head has 2 blocks, the original's 6"),
        (dict(head="conv1d", conv1d_original=False), r"conv1d head uses the correct transpose"),
    ],
)
def test_models_the_original_cannot_compute_are_refused(changes, says):
    with pytest.raises(CheckpointError, match=r"cannot be written in the original.*" + says):
        export.to_original_state_dicts(_model(**changes), {}, "m")


def test_export_refuses_to_overwrite_and_needs_torch_to_write(tmp_path):
    _random_converted_dir(tmp_path / "converted", "meanP", "none", seed=0)
    (tmp_path / "taken.pt").write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export.export_actionclip_pt(tmp_path / "converted", tmp_path / "taken.pt")
    assert (tmp_path / "taken.pt").read_bytes() == b"keep"
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        from actionclip_jax.convert import main
        from absl import app
        sys.argv = ["convert", "--to=actionclip-pt", "--checkpoint={tmp_path / 'converted'}",
                    "--output={tmp_path / 'new.pt'}"]
        app.run(main)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("convert: error: writing the PyTorch file") and "pip install" in last
    assert not (tmp_path / "new.pt").exists()


class _MMAdapter(nn.Module):
    """mmaction2's `TransformerAdapter`: T frame positions, OpenAI's CLIP Transformer (LayerNorm
    eps 1e-5, not the original's 1e-12), residual, mean over T."""

    def __init__(self, num_segs, width, layers, heads):
        super().__init__()
        self.frame_position_embeddings = nn.Embedding(num_segs, width)
        self.transformer = reference.reference_clip_module().Transformer(width, layers, heads)

    def forward(self, x):  # [B, T, E]
        y = x + self.frame_position_embeddings(torch.arange(x.shape[1]))[None]
        y = self.transformer(y.transpose(0, 1)).transpose(0, 1)
        return (y + x).mean(dim=1)


def test_mmaction2_export_loads_in_its_layout_with_the_same_features(tmp_path):
    model, params = _random_converted_dir(tmp_path / "converted", "transf", "none", seed=4)
    export.export_actionclip_pt(tmp_path / "converted", tmp_path / "m.pth", to="mmaction2")
    sd = torch.load(tmp_path / "m.pth", weights_only=True)["state_dict"]
    # What mmaction2's loader reads off the file: T from the table, the blocks from the keys.
    assert sd["adapter.frame_position_embeddings.weight"].shape == (T, SMALL["embed_dim"])
    assert sum(k.startswith("adapter.") and k.endswith(".attn.in_proj_weight") for k in sd) == 6
    mm = nn.Module()
    mm.clip = reference.make_reference_clip(SMALL, seed=5)
    mm.adapter = _MMAdapter(T, SMALL["embed_dim"], 6, SMALL["transformer_width"] // 64)
    mm.load_state_dict(sd)
    video = np.random.RandomState(1).randn(2, T, 112, 112, 3).astype(np.float32)
    encode = jax.jit(lambda p, v: model.apply({"params": p}, v, method=model.encode_video))
    with torch.no_grad():
        frames = torch.from_numpy(video.reshape(2 * T, 112, 112, 3).transpose(0, 3, 1, 2).copy())
        theirs = mm.adapter(mm.clip.encode_image(frames).view(2, T, -1))
    assert reference.rel_err(encode(params, video), theirs.numpy()) <= 1e-4
    with pytest.raises(CheckpointError, match=r"mmaction2's ActionCLIP port: it has the transf"):
        export.to_mmaction2_state_dict(_model(head="lstm"), {}, "m")
