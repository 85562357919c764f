"""Hugging Face `CLIPModel` folders (`config.json` + `model.safetensors` or `pytorch_model.bin`).

The folder's tensors are renamed to OpenAI's state-dict keys (q/k/v projections fused into
`in_proj_weight`, the projections transposed to OpenAI's `x @ proj` layout), so the strict importer
of `weights` does the rest; the sizes, activation and LayerNorm epsilon come from `config.json`.
Safetensors weights load without torch.

A folder of another model (a CLIP text or image tower alone, SigLIP, any other architecture) is
refused in one line that says what it is.
"""

import json
import re

import numpy as np
from etils import epath

from actionclip_jax.weight_files import CheckpointError, as_state_dict, read_safetensors
from actionclip_jax.weight_files import read_torch_file

CONFIG_FILE = "config.json"
# In the order they are preferred: safetensors needs no torch.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Tensors a CLIPModel file may hold that are no parameters: the position-id buffers older
# transformers versions saved (newer ones do not persist them).
DROPPED = ("text_model.embeddings.position_ids", "vision_model.embeddings.position_ids")

# transformers' CLIPTextConfig / CLIPVisionConfig defaults: config.json files written by
# `save_pretrained` may leave out fields that equal them.
_TEXT_DEFAULTS = dict(
    vocab_size=49408,
    hidden_size=512,
    intermediate_size=2048,
    num_hidden_layers=12,
    num_attention_heads=8,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    eos_token_id=49407,
)
_VISION_DEFAULTS = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    num_channels=3,
    image_size=224,
    patch_size=32,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)
# Hugging Face's activation names → ours (`models.clip.ACTIVATIONS`).
_ACTIVATIONS = {"quick_gelu": "quick_gelu", "gelu": "gelu"}

_OTHER_MODELS = {
    "clip_text_model": "a CLIP text tower alone ({arch}): it has no image tower; ActionCLIP needs "
    "the whole CLIPModel (text and image towers)",
    "clip_vision_model": "a CLIP image tower alone ({arch}): it has no text tower; ActionCLIP "
    "matches videos against label text and needs the whole CLIPModel",
    "siglip": "a SigLIP model ({arch}), not CLIP: its towers differ (no class token, an "
    "attention-pooling head, sigmoid loss); only CLIPModel checkpoints are supported",
    "siglip2": "a SigLIP 2 model ({arch}), not CLIP: its towers differ (no class token, an "
    "attention-pooling head, sigmoid loss); only CLIPModel checkpoints are supported",
    "siglip_text_model": "a SigLIP text tower alone ({arch}), not a CLIP model",
    "siglip_vision_model": "a SigLIP image tower alone ({arch}), not a CLIP model",
}


def is_hf_folder(path) -> bool:
    path = epath.Path(path)
    return path.is_dir() and (path / CONFIG_FILE).exists()


def _read_config(path) -> dict:
    file = epath.Path(path) / CONFIG_FILE
    try:
        config = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file} is not valid JSON ({e})") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{file} is not a Hugging Face config (a JSON object)")
    return config


def describe(config: dict, path) -> str | None:
    """None for a CLIPModel config; otherwise one line saying what the folder holds."""
    model_type = config.get("model_type")
    arch = ", ".join(config.get("architectures") or []) or "no architectures listed"
    if model_type is None:
        return (
            f"{path}/{CONFIG_FILE} has no model_type: not a Hugging Face model folder "
            "(a CLIPModel folder holds config.json and model.safetensors or pytorch_model.bin)"
        )
    if model_type in _OTHER_MODELS:
        return f"{path} is {_OTHER_MODELS[model_type].format(arch=arch)}"
    if model_type != "clip":
        return (
            f"{path} is a Hugging Face {model_type!r} model ({arch}), not a CLIP model; "
            "only CLIPModel folders (model_type 'clip') are supported"
        )
    other = [a for a in config.get("architectures") or [] if a != "CLIPModel"]
    if other:
        return (
            f"{path} is a {', '.join(other)} checkpoint, not a CLIPModel: only the whole "
            "CLIPModel (text and image towers with their projections) is supported"
        )
    return None


def _size(value, what, path) -> int:
    # image_size and patch_size may be [h, w]; CLIP's grid is square.
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise CheckpointError(f"{path}: {what} {value} is not square; CLIP needs a square one")
        value = value[0]
    return int(value)


def sizes_from_config(config: dict, path) -> dict:
    """The `CLIP` arguments (sizes, activation, LayerNorm epsilon) of a CLIPModel config."""
    text = config.get("text_config") or config.get("text_config_dict") or {}
    text = {**_TEXT_DEFAULTS, **text}
    vision = {
        **_VISION_DEFAULTS,
        **(config.get("vision_config") or config.get("vision_config_dict") or {}),
    }
    problems = []
    acts = {text["hidden_act"], vision["hidden_act"]}
    if len(acts) > 1:
        problems.append(f"text and image towers use different activations {sorted(acts)}")
    act = text["hidden_act"]
    if act not in _ACTIVATIONS:
        problems.append(f"activation {act!r} (supported: {sorted(_ACTIVATIONS)})")
    eps = {float(text["layer_norm_eps"]), float(vision["layer_norm_eps"])}
    if len(eps) > 1:
        problems.append(f"text and image towers use different LayerNorm epsilons {sorted(eps)}")
    for name, cfg in (("text", text), ("vision", vision)):
        if cfg["intermediate_size"] != 4 * cfg["hidden_size"]:
            problems.append(
                f"{name} MLP width {cfg['intermediate_size']} is not 4 × {cfg['hidden_size']}"
            )
    if vision["num_channels"] != 3:
        problems.append(f"{vision['num_channels']} image channels instead of 3")
    # transformers pools text at the first eos_token_id (or, for the legacy id 2, at the highest
    # token id); the tokenizer here ends every text with 49407, its highest id.
    if text["eos_token_id"] not in (2, 49407):
        problems.append(f"text pooled at token id {text['eos_token_id']}, not 49407")
    if problems:
        raise CheckpointError(
            f"{path}: this CLIPModel differs from the CLIP architecture built here: "
            + "; ".join(problems)
        )
    width_v = int(vision["hidden_size"])
    sizes = dict(
        embed_dim=int(config.get("projection_dim") or 512),
        image_resolution=_size(vision["image_size"], "image_size", path),
        vision_layers=int(vision["num_hidden_layers"]),
        vision_width=width_v,
        vision_patch_size=_size(vision["patch_size"], "patch_size", path),
        context_length=int(text["max_position_embeddings"]),
        vocab_size=int(text["vocab_size"]),
        transformer_width=int(text["hidden_size"]),
        transformer_heads=int(text["num_attention_heads"]),
        transformer_layers=int(text["num_hidden_layers"]),
    )
    if int(vision["num_attention_heads"]) != width_v // 64:
        sizes["vision_heads"] = int(vision["num_attention_heads"])
    sizes["activation"] = _ACTIVATIONS[act]
    sizes["ln_epsilon"] = eps.pop()
    return sizes


def read_weights(path) -> dict[str, np.ndarray]:
    """The folder's tensors (one file or the shards of an index), as float32 numpy arrays."""
    path = epath.Path(path)
    for name in WEIGHT_FILES:
        if (path / name).exists():
            break
    else:
        present = sorted(p.name for p in path.iterdir())
        raise CheckpointError(
            f"{path} has a CLIPModel config.json but no model.safetensors or pytorch_model.bin "
            f"(found: {', '.join(present)}); download the weights file too"
        )
    if name.endswith(".index.json"):
        index = json.loads((path / name).read_text())
        shards = sorted(set(index.get("weight_map", {}).values()))
        if not shards:
            raise CheckpointError(f"{path / name} lists no weight files")
    else:
        shards = [name]
    out = {}
    for shard in shards:
        file = path / shard
        if shard.endswith(".safetensors"):
            out.update(read_safetensors(file))
        else:
            out.update(as_state_dict(read_torch_file(file), file, "the file"))
    return out


def _block_map(hf: dict, prefix: str, out_prefix: str, layers: int, out: dict, used: set):
    for i in range(layers):
        src, dst = f"{prefix}{i}.", f"{out_prefix}{i}."
        qkv = [f"{src}self_attn.{p}_proj" for p in "qkv"]
        for part, fused in (("weight", "in_proj_weight"), ("bias", "in_proj_bias")):
            names = [f"{q}.{part}" for q in qkv]
            if all(n in hf for n in names):
                # torch's MultiheadAttention stacks the q, k, v projections in that order.
                out[f"{dst}attn.{fused}"] = np.concatenate([hf[n] for n in names], axis=0)
                used.update(names)
        renames = {
            "self_attn.out_proj": "attn.out_proj",
            "layer_norm1": "ln_1",
            "layer_norm2": "ln_2",
            "mlp.fc1": "mlp.c_fc",
            "mlp.fc2": "mlp.c_proj",
        }
        for a, b in renames.items():
            for part in ("weight", "bias"):
                if f"{src}{a}.{part}" in hf:
                    out[f"{dst}{b}.{part}"] = hf[f"{src}{a}.{part}"]
                    used.add(f"{src}{a}.{part}")


def to_openai_state_dict(hf: dict, sizes: dict, path) -> tuple[dict, list[str]]:
    """Renames a CLIPModel state dict to OpenAI's keys.

    Returns:
      `(state dict, dropped)`: `dropped` names the tensors that are no parameters (position ids).
      Any other tensor that has no OpenAI counterpart is an error, so nothing is lost silently.
    """
    out, used = {}, set()
    t, v = "text_model.", "vision_model."
    direct = {
        f"{t}embeddings.token_embedding.weight": "token_embedding.weight",
        f"{t}embeddings.position_embedding.weight": "positional_embedding",
        f"{t}final_layer_norm.weight": "ln_final.weight",
        f"{t}final_layer_norm.bias": "ln_final.bias",
        f"{v}embeddings.class_embedding": "visual.class_embedding",
        f"{v}embeddings.patch_embedding.weight": "visual.conv1.weight",
        f"{v}embeddings.position_embedding.weight": "visual.positional_embedding",
        f"{v}pre_layrnorm.weight": "visual.ln_pre.weight",  # sic: transformers' name
        f"{v}pre_layrnorm.bias": "visual.ln_pre.bias",
        f"{v}post_layernorm.weight": "visual.ln_post.weight",
        f"{v}post_layernorm.bias": "visual.ln_post.bias",
        "logit_scale": "logit_scale",
    }
    for a, b in direct.items():
        if a in hf:
            out[b] = hf[a]
            used.add(a)
    # nn.Linear weights [E, W] → OpenAI's projection parameters [W, E] (used as x @ proj).
    projections = (("text_projection.weight", "text_projection"),
                   ("visual_projection.weight", "visual.proj"))  # fmt: skip
    for a, b in projections:
        if a in hf:
            out[b] = np.ascontiguousarray(hf[a].T)
            used.add(a)
    layers = lambda prefix: len(
        {m.group(1) for k in hf for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m}
    )
    _block_map(hf, f"{t}encoder.layers.", "transformer.resblocks.", layers(f"{t}encoder.layers."),
               out, used)  # fmt: skip
    _block_map(hf, f"{v}encoder.layers.", "visual.transformer.resblocks.",
               layers(f"{v}encoder.layers."), out, used)  # fmt: skip
    dropped = sorted(k for k in hf if k in DROPPED)
    leftover = sorted(k for k in hf if k not in used and k not in DROPPED)
    if leftover:
        raise CheckpointError(
            f"{path}: {len(leftover)} tensors of the CLIPModel file have no place in CLIP "
            f"(e.g. {leftover[:5]}); is this a modified CLIPModel?"
        )
    if not any(k.startswith(t) for k in hf) or not any(k.startswith(v) for k in hf):
        missing = "text" if not any(k.startswith(t) for k in hf) else "image"
        raise CheckpointError(
            f"{path}: its config says CLIPModel but the weights hold no {missing} tower "
            f"({missing.replace('image', 'vision')}_model.*)"
        )
    return out, dropped


def read_hf_clip(path) -> dict:
    """Reads a CLIPModel folder.

    Returns:
      `{'kind': 'hf_clip', 'clip': OpenAI-keyed state dict, 'fusion': None, 'sizes': CLIP
      arguments from config.json, 'dropped': tensor names that are no parameters}`.
    """
    config = _read_config(path)
    what = describe(config, path)
    if what:
        raise CheckpointError(what)
    sizes = sizes_from_config(config, path)
    sd, dropped = to_openai_state_dict(read_weights(path), sizes, path)
    return {"kind": "hf_clip", "clip": sd, "fusion": None, "sizes": sizes, "dropped": dropped}
