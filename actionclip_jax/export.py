"""Writing a model as the original ActionCLIP code saves its checkpoints.

The original (`utils/saving.py`) saves `{'epoch', 'model_state_dict', 'fusion_model_state_dict',
'optimizer_state_dict'}`; its `train.py` (`pretrain:` and `resume:`) and `test.py` read the two
state dicts with strict `load_state_dict`, the fusion model wrapped in `DataParallel`, so its keys
carry `module.`. The file written here holds `epoch` (0: no training epoch of the original's
schedule is recorded) and the two state dicts under the original's keys; no optimizer state, which
the original never reads back.

mmaction2's port (`projects/actionclip`) reads another layout, `{'state_dict': {'clip.*',
'adapter.*'}}`: its `ActionClip` is OpenAI's CLIP plus a `TransformerAdapter`, the Transf head with
a frame-position table of exactly T rows; `to_mmaction2_state_dict` writes that.

Keys and layouts are the inverse of `weights.torch_key_to_flax`, and every exported tensor is
checked to map back to its parameter unchanged. Only models the original can compute are written:
QuickGELU, LayerNorm eps 1e-5, 64-wide heads, its Conv_1D reshape, a transf head of at most 6
blocks (the original builds 6: a shallower head, such as the demo's 2, is written with identity
blocks after its own — pre-LN blocks whose output projections are zero add nothing, so the
original computes the same features) and a transf_cls head of exactly 6.
"""

import os
import re
from collections import OrderedDict

import jax
import numpy as np
from etils import epath

from actionclip_jax import weights
from actionclip_jax.models import actionclip
from actionclip_jax.weight_files import CheckpointError

DTYPES = ("fp32", "fp16")
ORIGINAL_HEAD_LAYERS = 6  # the original's TemporalTransformer and TAggregate are built with 6
FORMATS = ("actionclip-pt", "mmaction2")

# What the original's `convert_weights` casts to fp16 (convolutions, linear layers, attention
# projections and the two projection matrices); LayerNorms, embeddings, the logit scale and the
# whole fusion model stay fp32, as in the checkpoints it saves.
_FP16_SUFFIXES = (
    "conv1.weight",
    "attn.in_proj_weight",
    "attn.in_proj_bias",
    "attn.out_proj.weight",
    "attn.out_proj.bias",
    "mlp.c_fc.weight",
    "mlp.c_fc.bias",
    "mlp.c_proj.weight",
    "mlp.c_proj.bias",
)
_FP16_KEYS = ("text_projection", "visual.proj")


def flax_to_torch(path: tuple[str, ...], value: np.ndarray) -> tuple[str, np.ndarray]:
    """The PyTorch key and tensor of one Flax parameter: the inverse of `torch_key_to_flax`."""
    *mods, leaf = path
    parts = []
    for m in mods:
        block = re.fullmatch(r"(resblocks|layers)_(\d+)", m)
        parts += [block.group(1), block.group(2)] if block else [m]
    if mods and mods[-1] == "in_proj":  # torch's MultiheadAttention keeps q/k/v fused, [3W, W]
        parts[-1] = "in_proj_weight" if leaf == "kernel" else "in_proj_bias"
        return ".".join(parts), value.T if leaf == "kernel" else value
    if leaf == "kernel":
        if value.ndim == 4:  # Flax Conv [kh, kw, I, O] → Conv2d [O, I, kh, kw]
            value = value.transpose(3, 2, 0, 1)
        elif value.ndim == 3:  # [k, I/groups, O] → Conv1d [O, I/groups, k]
            value = value.transpose(2, 1, 0)
        else:  # Dense [in, out] → Linear [out, in]
            value = value.T
        leaf = "weight"
    elif leaf in ("scale", "embedding"):
        leaf = "weight"
    return ".".join([*parts, leaf]), value


def _check_exportable(model, source):
    sizes = model.clip_sizes
    problems = []
    if sizes.get("activation", "quick_gelu") != "quick_gelu":
        problems.append(f"its MLPs use {sizes['activation']}, the original's CLIP QuickGELU")
    if sizes.get("ln_epsilon", 1e-5) != 1e-5:
        problems.append(f"its LayerNorm epsilon is {sizes['ln_epsilon']}, the original's 1e-5")
    if sizes.get("vision_heads") not in (None, sizes["vision_width"] // 64):
        problems.append(
            f"its image tower has {sizes['vision_heads']} heads; the original builds "
            f"vision_width / 64 = {sizes['vision_width'] // 64}"
        )
    if sizes["transformer_heads"] != sizes["transformer_width"] // 64:
        problems.append(
            f"its text tower has {sizes['transformer_heads']} heads; the original builds "
            f"transformer_width / 64 = {sizes['transformer_width'] // 64}"
        )
    if model.frame_stage not in ("none", "shift", "joint"):
        problems.append(f"its frame stage {model.frame_stage!r} (Open-VCLIP's) is not the original's")
    if model.head == "mean_logits":
        problems.append("its mean_logits pooling (Open-VCLIP's) is none of the original's heads")
    if model.pixel_norm != "clip":
        problems.append(
            f"it expects {model.pixel_norm}-normalised pixels; the original feeds CLIP's"
        )
    if model.head == "transf" and model.head_layers > ORIGINAL_HEAD_LAYERS:
        problems.append(f"its transf head has {model.head_layers} blocks, more than the original's 6")
    if model.head == "transf_cls" and model.head_layers != ORIGINAL_HEAD_LAYERS:
        problems.append(
            f"its transf_cls head has {model.head_layers} blocks, the original's 6 (post-LN "
            "blocks cannot be padded with identities)"
        )
    if model.head == "conv1d" and not model.conv1d_original:
        problems.append(
            "its conv1d head uses the correct transpose (conv1d_original=False); the original's "
            "Conv_1D reshapes instead and would compute other features"
        )
    if not model.with_text or model.num_classes:
        problems.append("it is a 1-of-N classifier; the original has no such model")
    if model.head == "transf" and model.num_frames > sizes["context_length"]:
        problems.append(
            f"it reads {model.num_frames} frame positions; the original's table has "
            f"context_length = {sizes['context_length']} rows"
        )
    if problems:
        raise CheckpointError(
            f"{source} cannot be written in the original ActionCLIP's format: "
            + "; ".join(problems)
        )


def to_original_state_dicts(model, params, source="model") -> tuple[OrderedDict, OrderedDict]:
    """`(model_state_dict, fusion_model_state_dict)` of an ActionCLIP model, as numpy fp32.

    The fusion keys carry `module.` (the original saves its DataParallel-wrapped fusion model).
    Raises:
      CheckpointError: the model has something the original cannot load or compute.
    """
    _check_exportable(model, source)
    flat = {
        tuple(k.key for k in path): np.asarray(leaf, np.float32)
        for path, leaf in jax.tree_util.tree_leaves_with_path(params)
    }
    clip_sd, fusion_sd = OrderedDict(), OrderedDict()
    for path, value in flat.items():
        key, tensor = flax_to_torch(path[1:], value)
        back, fn = weights.torch_key_to_flax(key, tensor.ndim)
        if back != path[1:] or not np.array_equal(fn(tensor), value):  # a key-map bug, not input
            raise AssertionError(f"{'/'.join(path)} does not export as a round trip ({key})")
        if path[0] == "clip":
            if model.frame_stage == "shift":  # the original wraps each visual block in `.net`
                key = re.sub(r"^(visual\.transformer\.resblocks\.\d+)\.", r"\1.net.", key)
            clip_sd[key] = np.array(tensor, order="C")  # ascontiguousarray makes 0-d 1-d
        elif path[0] == "fusion":
            fusion_sd[f"module.{key}"] = np.array(tensor, order="C")
        else:
            raise CheckpointError(f"{source}: parameters {path[0]!r} have no place in the original")
    if model.head == "transf":
        fusion_sd.update(_identity_blocks(model))
    if model.head != "meanP":
        # The original creates the frame-position table for every head but meanP and sizes it
        # like the text context; only Transf reads it, and only its first T rows.
        rows, e = model.clip_sizes["context_length"], model.clip_sizes["embed_dim"]
        table = fusion_sd.get("module.frame_position_embeddings.weight")
        full = np.zeros((rows, e), np.float32)
        if table is not None:  # rows past the frames are never read: a longer table is cut
            n = min(rows, table.shape[0])
            full[:n] = table[:n]
        fusion_sd["module.frame_position_embeddings.weight"] = full
    return clip_sd, fusion_sd


def _identity_blocks(model) -> OrderedDict:
    """Transf blocks `head_layers`..5 that leave their input unchanged: x + attn(ln(x)) · 0 +
    mlp(ln(x)) · 0, with the output projections (weights and biases) zero."""
    e = model.clip_sizes["embed_dim"]
    out = OrderedDict()
    for i in range(model.head_layers, ORIGINAL_HEAD_LAYERS):
        p = f"module.transformer.resblocks.{i}."
        for ln in ("ln_1", "ln_2"):
            out[p + f"{ln}.weight"] = np.ones(e, np.float32)
            out[p + f"{ln}.bias"] = np.zeros(e, np.float32)
        out[p + "attn.in_proj_weight"] = np.zeros((3 * e, e), np.float32)
        out[p + "attn.in_proj_bias"] = np.zeros(3 * e, np.float32)
        out[p + "attn.out_proj.weight"] = np.zeros((e, e), np.float32)
        out[p + "attn.out_proj.bias"] = np.zeros(e, np.float32)
        out[p + "mlp.c_fc.weight"] = np.zeros((4 * e, e), np.float32)
        out[p + "mlp.c_fc.bias"] = np.zeros(4 * e, np.float32)
        out[p + "mlp.c_proj.weight"] = np.zeros((e, 4 * e), np.float32)
        out[p + "mlp.c_proj.bias"] = np.zeros(e, np.float32)
    return out


def to_mmaction2_state_dict(model, params, source="model") -> OrderedDict:
    """The state dict of mmaction2's `ActionClip` (`clip.*`, `adapter.*`), as numpy fp32.

    mmaction2's port has the Transf head only (its `TransformerAdapter`) and no frame stage; its
    frame-position table has one row per frame, and it counts the adapter's blocks off the keys.
    """
    if model.head != "transf" or model.frame_stage != "none":
        raise CheckpointError(
            f"{source} cannot be written for mmaction2's ActionCLIP port: it has the transf head "
            f"and no frame stage only, this model has the {model.head} head and frame stage "
            f"{model.frame_stage!r}"
        )
    clip_sd, fusion_sd = to_original_state_dicts(model, params, source)
    out = OrderedDict((f"clip.{k}", v) for k, v in clip_sd.items())
    for k, v in fusion_sd.items():
        k = k[len("module.") :]
        if k == "frame_position_embeddings.weight":
            v = v[: model.num_frames]
        out[f"adapter.{k}"] = v
    return out


def _cast(sd, dtype, prefix=""):
    """fp16 where the original's `convert_weights` casts (keys under `prefix` only)."""
    if dtype == "fp32":
        return sd
    half = lambda k: k.startswith(prefix) and (
        k.endswith(_FP16_SUFFIXES) or k[len(prefix) :] in _FP16_KEYS
    )
    return OrderedDict((k, v.astype(np.float16) if half(k) else v) for k, v in sd.items())


def export_actionclip_pt(
    checkpoint,
    output,
    dtype: str = "fp32",
    overwrite: bool = False,
    activation: str | None = None,
    to: str = "actionclip-pt",
    num_frames: int | None = None,
    clip_source=None,
) -> dict:
    """Writes any loadable checkpoint as an original ActionCLIP checkpoint file (`.pt`).

    With `to="mmaction2"`, as a checkpoint of mmaction2's ActionCLIP port instead (`.pth`,
    `{'state_dict': ...}`, the frame-position table cut to `num_frames` rows: its `T`).

    Args:
      checkpoint: anything `load_actionclip` reads (converted directory, `.pt`, Hugging Face or
        open_clip folder, ...).
      output: the `.pt` file to write (written to a temporary name, then renamed).
      dtype: `fp32`, or `fp16` for the original's mixed layout (fp16 convolutions, linear layers,
        attention and projections; fp32 LayerNorms, embeddings, logit scale and fusion model).
      overwrite: replace an existing `output`.
      activation: as for `load_actionclip`.
      to: `actionclip-pt` or `mmaction2`.
      num_frames: T of the model (mmaction2: the rows of its frame-position table); by default
        the checkpoint's, else 8.
      clip_source: as for `load_actionclip` (a ViFi-CLIP file's token embedding).

    Returns:
      A summary: the path, dtype, head, frame stage and tensor counts.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if to not in FORMATS:
        raise ValueError(f"to must be one of {FORMATS}, got {to!r}")
    output = epath.Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; choose another name or pass --overwrite")
    if output.exists() and output.is_dir():
        raise FileExistsError(f"{output} is a directory; the original's checkpoint is one file")
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise ImportError(
            f"writing the PyTorch file {output} needs torch: `pip install 'actionclip_jax[torch]'` "
            "(or `pip install torch`)"
        ) from e
    model, params = weights.load_actionclip(
        checkpoint, num_frames=num_frames, activation=activation, clip_source=clip_source
    )
    params = actionclip.inference_params(params)  # not what only training reads (FROSTER's)
    as_torch = lambda sd: OrderedDict((k, torch.from_numpy(v.copy())) for k, v in sd.items())
    if to == "mmaction2":
        # mmaction2 builds OpenAI's CLIP (fp16 on GPUs) and loads into it; the adapter is fp32.
        sd = _cast(to_mmaction2_state_dict(model, params, str(checkpoint)), dtype, "clip.")
        payload = {"state_dict": as_torch(sd)}
        n_clip = sum(k.startswith("clip.") for k in sd)
        counts = {"clip_tensors": n_clip, "adapter_tensors": len(sd) - n_clip}
    else:
        clip_sd, fusion_sd = to_original_state_dicts(model, params, str(checkpoint))
        payload = {
            "epoch": 0,
            "model_state_dict": as_torch(_cast(clip_sd, dtype)),
            "fusion_model_state_dict": as_torch(fusion_sd),
        }
        counts = {"model_tensors": len(clip_sd), "fusion_tensors": len(fusion_sd)}
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.parent / f".{output.name}.tmp-{os.getpid()}"
    try:
        with tmp.open("wb") as f:
            torch.save(payload, f)
        tmp.replace(output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {
        "output": str(output),
        "dtype": dtype,
        "head": model.head,
        "frame_stage": model.frame_stage,
        "num_frames": model.num_frames,
        **counts,
    }
