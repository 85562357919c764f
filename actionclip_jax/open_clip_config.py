"""open_clip's `open_clip_config.json`: the model settings beside an open_clip state dict.

open_clip writes OpenAI's state-dict keys, but its models may differ from OpenAI's CLIP in ways
the keys do not show: the MLP activation (plain GELU unless the model name ends in `-quickgelu`),
the attention head width (ViT-H/14 and larger use 80+ wide heads), pooling and normalisation
variants. Hub repositories ship the settings as `open_clip_config.json` next to
`open_clip_model.safetensors` / `open_clip_pytorch_model.bin`; this module reads them and refuses
settings the CLIP built here does not have, naming them.
"""

import json

from etils import epath

from actionclip_jax.weight_files import CheckpointError

CONFIG_FILE = "open_clip_config.json"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")

# Settings that leave the architecture OpenAI's only at these values (open_clip's defaults).
# Training-only settings (dropouts) do not matter for the weights and are not listed.
_PLAIN_TOP = dict(custom_text=False, init_logit_bias=None)
_PLAIN_VISION = dict(
    mlp_ratio=4.0,
    ls_init_value=None,
    attentional_pool=False,
    no_ln_pre=False,
    pos_embed_type="learnable",
    final_ln_after_pool=False,
    pool_type="tok",
    output_tokens=False,
    act_kwargs=None,
    norm_kwargs=None,
    timm_model_name=None,
    global_average_pool=False,
    input_patchnorm=False,
)
_PLAIN_TEXT = dict(
    mlp_ratio=4.0,
    ls_init_value=None,
    hf_model_name=None,
    embed_cls=False,
    no_causal_mask=False,
    final_ln_after_pool=False,
    pool_type="argmax",
    proj_bias=False,
    proj_type="linear",
    output_tokens=False,
    act_kwargs=None,
    norm_kwargs=None,
)
# Sizes (read off the weights, or turned into CLIP arguments below) and settings that do not
# change what the weights compute.
_KNOWN = {
    "": {"embed_dim", "quick_gelu", "vision_cfg", "text_cfg", "init_logit_scale", "cast_dtype"},
    "vision_cfg.": {"image_size", "layers", "width", "head_width", "patch_size", "patch_dropout",
                    "attn_pooler_queries", "attn_pooler_heads"},
    "text_cfg.": {"context_length", "vocab_size", "width", "heads", "layers", "pad_id",
                  "tokenizer_kwargs", "hf_tokenizer_name", "dropout", "attn_dropout"},
}  # fmt: skip


def config_beside(path):
    """The `open_clip_config.json` that describes the weights file `path`, or None.

    Only for open_clip's own file names, so that an unrelated config in the same folder is never
    taken for the file's.
    """
    path = epath.Path(path)
    if path.is_dir():
        file = path / CONFIG_FILE
    elif path.name in WEIGHT_FILES:
        file = path.parent / CONFIG_FILE
    else:
        return None
    return file if file.exists() else None


def weights_in_folder(path):
    """The weights file of an open_clip hub folder (safetensors preferred), or None."""
    for name in WEIGHT_FILES:
        if (epath.Path(path) / name).exists():
            return epath.Path(path) / name
    return None


def _differs(value, plain) -> bool:
    if plain is None:
        return value not in (None, {}, "")
    if isinstance(plain, float):
        return float(value) != plain
    return value != plain


def model_settings(config_file) -> dict:
    """The `CLIP` arguments an open_clip config fixes: activation, vision heads, sizes.

    Raises:
      CheckpointError: a setting makes the model something other than OpenAI's ViT CLIP.
    """
    try:
        cfg = json.loads(epath.Path(config_file).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{config_file} is not valid JSON ({e})") from e
    model = cfg.get("model_cfg") if isinstance(cfg, dict) else None
    if not isinstance(model, dict):
        raise CheckpointError(f"{config_file} has no model_cfg: not an open_clip model config")
    vision, text = model.get("vision_cfg") or {}, model.get("text_cfg") or {}
    unsupported = []
    for where, section, plain in (("", model, _PLAIN_TOP), ("vision_cfg.", vision, _PLAIN_VISION),
                                  ("text_cfg.", text, _PLAIN_TEXT)):  # fmt: skip
        for k, v in section.items():
            if k in plain:
                if _differs(v, plain[k]):
                    unsupported.append(f"{where}{k}={v!r}")
            elif k not in _KNOWN[where]:
                unsupported.append(f"{where}{k}={v!r} (a setting unknown to this importer)")
    if isinstance(vision.get("layers"), (list, tuple)):
        unsupported.append("vision_cfg.layers (a ResNet image tower)")
    if unsupported:
        raise CheckpointError(
            f"{config_file}: open_clip settings that the OpenAI-style CLIP built here does not "
            f"have: {', '.join(unsupported)}"
        )
    out = {"activation": "quick_gelu" if model.get("quick_gelu") else "gelu"}
    width = vision.get("width")
    head_width = vision.get("head_width", 64)
    if width is not None and width // head_width != width // 64:
        out["vision_heads"] = int(width // head_width)
    if "heads" in text:
        out["transformer_heads"] = int(text["heads"])
    return out
