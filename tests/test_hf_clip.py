"""Hugging Face CLIPModel folders: strict, torch-free for safetensors, equal to transformers'."""

import json
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
import safetensors.numpy
import torch
import transformers

import reference
from actionclip_jax import CheckpointError, load_actionclip, load_clip
from actionclip_jax import weights

TOL = 1e-4  # relative, the issue's bound against transformers' own CLIPModel


def _config(activation="quick_gelu", eps=1e-5, vision_heads=2):
    # The small test sizes of reference.SMALL, in transformers' terms.
    return transformers.CLIPConfig(
        text_config=dict(hidden_size=192, intermediate_size=768, num_hidden_layers=2,
                         num_attention_heads=3, hidden_act=activation, layer_norm_eps=eps),
        vision_config=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=3,
                           num_attention_heads=vision_heads, image_size=112, patch_size=14,
                           hidden_act=activation, layer_norm_eps=eps),
        projection_dim=96,
    )  # fmt: skip


def _hf_model(seed=0, **kw):
    torch.manual_seed(seed)
    return reference.randomize_(transformers.CLIPModel(_config(**kw)), seed).eval()


def _save(model, folder, fmt="safetensors", extra=None):
    """Writes a CLIPModel folder; `extra` tensors are added to the safetensors file."""
    model.save_pretrained(folder)
    if fmt == "bin":  # transformers 5 writes safetensors only; older folders have this file
        (folder / "model.safetensors").unlink()
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    if extra:
        tensors = safetensors.numpy.load_file(folder / "model.safetensors")
        tensors.update(extra)
        safetensors.numpy.save_file(tensors, folder / "model.safetensors", {"format": "pt"})
    return folder


def _hf_features(model, images, tokens):
    with torch.no_grad():
        pixels = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        img = model.get_image_features(pixel_values=pixels).pooler_output
        txt = model.get_text_features(input_ids=torch.from_numpy(tokens.astype(np.int64)))
    return img.numpy(), txt.pooler_output.numpy()


def _features(model, params, images, tokens):
    encode = jax.jit(lambda p, x, t: (model.apply({"params": p}, x, method=model.encode_image),
                                      model.apply({"params": p}, t, method=model.encode_text)))
    img, txt = encode(params, images, tokens)  # one compile, not one per op
    return np.asarray(img), np.asarray(txt)


# Position-id buffers, as older transformers versions saved them: no parameters.
POSITION_IDS = {
    "text_model.embeddings.position_ids": np.arange(77, dtype=np.int64)[None],
    "vision_model.embeddings.position_ids": np.arange(65, dtype=np.int64)[None],
}


@pytest.mark.parametrize(
    "activation, eps, vision_heads, fmt",
    [
        ("quick_gelu", 1e-5, 2, "safetensors"),
        ("gelu", 1e-6, 4, "safetensors"),  # 32-wide vision heads, not CLIP's 64
        ("quick_gelu", 1e-5, 2, "bin"),
    ],
)
def test_folder_features_match_transformers(
    tmp_path, small_images, sample_tokens, activation, eps, vision_heads, fmt
):
    hf = _hf_model(activation=activation, eps=eps, vision_heads=vision_heads)
    folder = _save(hf, tmp_path / "clip", fmt)
    model, params = load_clip(folder)
    assert (model.activation, model.ln_epsilon) == (activation, eps)
    assert model.vision_heads == (None if vision_heads == 2 else vision_heads)
    img, txt = _features(model, params, small_images, sample_tokens)
    ref_img, ref_txt = _hf_features(hf, small_images, sample_tokens)
    assert reference.rel_err(img, ref_img) <= TOL
    assert reference.rel_err(txt, ref_txt) <= TOL


def test_activation_from_the_config_matters(tmp_path, small_images, sample_tokens):
    """Built with QuickGELU, the GELU model's features are off: the field is not decoration."""
    hf = _hf_model(activation="gelu")
    model, params = load_clip(_save(hf, tmp_path / "clip"))
    wrong = model.clone(activation="quick_gelu")
    ref_img, _ = _hf_features(hf, small_images, sample_tokens)
    img, _ = _features(wrong, params, small_images, sample_tokens)
    assert reference.rel_err(img, ref_img) > 1e-3


def test_folder_converts_naming_the_dropped_buffers(tmp_path, small_images, sample_tokens):
    hf = _hf_model()
    folder = _save(hf, tmp_path / "clip", extra=POSITION_IDS)
    meta = weights.convert(folder, tmp_path / "converted")
    assert meta["source_kind"] == "hf_clip"
    assert meta["dropped"] == sorted(POSITION_IDS)
    assert meta["clip"] == {**reference.SMALL, "activation": "quick_gelu", "ln_epsilon": 1e-5}
    model, params = load_clip(tmp_path / "converted")
    ref_img, ref_txt = _hf_features(hf, small_images, sample_tokens)
    img, txt = _features(model, params, small_images, sample_tokens)
    assert reference.rel_err(img, ref_img) <= TOL and reference.rel_err(txt, ref_txt) <= TOL
    video_model, _ = load_actionclip(folder, num_frames=2)
    assert video_model.head == "meanP" and video_model.clip_sizes["activation"] == "quick_gelu"


def test_safetensors_folder_loads_where_torch_is_not_installed(tmp_path, small_images):
    hf = _hf_model(activation="gelu")
    folder = _save(hf, tmp_path / "clip")
    np.save(tmp_path / "images.npy", small_images)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        from actionclip_jax import load_clip
        model, params = load_clip({str(folder)!r})
        x = np.load({str(tmp_path / "images.npy")!r})
        np.save({str(tmp_path / "out.npy")!r}, model.apply({{"params": params}}, x,
                method=model.encode_image))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    ref_img, _ = _hf_features(hf, small_images, np.zeros((1, 77), np.int32))
    assert reference.rel_err(np.load(tmp_path / "out.npy"), ref_img) <= TOL


def test_unknown_tensor_is_an_error_not_dropped(tmp_path):
    extra = {"vision_model.adapter.weight": np.zeros((4, 4), np.float32)}
    folder = _save(_hf_model(), tmp_path / "clip", extra=extra)
    with pytest.raises(CheckpointError, match=r"1 tensors .* no place in CLIP.*adapter.weight"):
        load_clip(folder)


def test_missing_tensor_is_an_error(tmp_path):
    folder = _save(_hf_model(), tmp_path / "clip")
    tensors = safetensors.numpy.load_file(folder / "model.safetensors")
    del tensors["vision_model.encoder.layers.2.self_attn.k_proj.bias"]
    safetensors.numpy.save_file(tensors, folder / "model.safetensors", {"format": "pt"})
    # Without k, the fused q/k/v projection cannot be built: its q and v are left over.
    with pytest.raises(CheckpointError, match=r"layers.2.self_attn.q_proj.bias"):
        load_clip(folder)


def test_folder_without_weights_says_so(tmp_path):
    _hf_model().config.save_pretrained(tmp_path / "clip")
    with pytest.raises(CheckpointError, match=r"clip has a CLIPModel config.json but no model"):
        load_clip(tmp_path / "clip")


def _text_only(folder):
    cfg = _config().text_config
    transformers.CLIPTextModelWithProjection(cfg).save_pretrained(folder)


def _vision_only(folder):
    transformers.CLIPVisionModel(_config().vision_config).save_pretrained(folder)


def _siglip(folder):
    cfg = transformers.SiglipConfig(
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=1),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                           num_attention_heads=1, image_size=32, patch_size=16),
    )  # fmt: skip
    transformers.SiglipModel(cfg).save_pretrained(folder)


def _bert(folder):
    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=1,
                                  intermediate_size=64, vocab_size=100)  # fmt: skip
    transformers.BertModel(cfg).save_pretrained(folder)


@pytest.mark.parametrize(
    "make, message",
    [
        (_text_only, r"is a CLIP text tower alone \(CLIPTextModelWithProjection\)"),
        (_vision_only, r"is a CLIP image tower alone \(CLIPVisionModel\).*no text tower"),
        (_siglip, r"is a SigLIP model \(SiglipModel\), not CLIP"),
        (_bert, r"is a Hugging Face 'bert' model \(BertModel\), not a CLIP model"),
    ],
)
def test_folder_of_another_model_is_named_in_one_line(tmp_path, make, message):
    make(tmp_path / "model")
    with pytest.raises(CheckpointError, match=message) as e:
        load_clip(tmp_path / "model")
    assert "\n" not in str(e.value)


def test_unsupported_activation_is_named(tmp_path):
    folder = _save(_hf_model(), tmp_path / "clip")
    config = json.loads((folder / "config.json").read_text())
    for tower in ("text_config", "vision_config"):
        config[tower]["hidden_act"] = "gelu_new"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"activation 'gelu_new' \(supported"):
        load_clip(folder)
