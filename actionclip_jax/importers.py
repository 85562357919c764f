"""Importers of the released checkpoints of ActionCLIP's successors: ViFi-CLIP, Open-VCLIP, FROSTER.

Each turns a file of its recipe into an OpenAI-keyed CLIP state dict plus the video model it
describes (frame stage, pooling, pixel normalisation), so that `weights.load_actionclip`,
`predict`, `convert` and `init.checkpoint` read it like any CLIP file. Import is strict: every
tensor of the model's weights is used, or is named here as dropped; an unknown one is an error.

- **ViFi-CLIP** (`{'model', 'optimizer', 'lr_scheduler', 'max_accuracy', 'epoch', 'config'}`, keys
  `module.` + `image_encoder.<visual key>` / `text_encoder.<text key>` / `logit_scale`): plain CLIP
  towers, mean pooling, ImageNet pixel normalisation. Its files lack `token_embedding.weight` (the
  prompts' token embeddings were computed once and stored as the buffer
  `prompt_learner.complete_text_embeddings`, dropped here): it is taken from the OpenAI CLIP file
  the user passes (`clip_source`; config `init.clip`, `--clip`). The bridge-and-prompt variant
  (`prompt_learner.ctx`, `VPT` keys) is not supported.
- **Open-VCLIP** (`{'model_state': {'model.<OpenAI key>': ...}}`, the released `swa_2_22.pth`,
  or a per-epoch `.pyth` with optimiser and scaler state besides): neighbour-frame attention,
  mean of per-frame logits, CLIP normalisation. The released file is the un-interpolated
  average; the original scores it half-way back to CLIP (`weight_space.interpolate=0.5`).
- **FROSTER** (Open-VCLIP's layout plus its training-only tensors: `projector_v.{0,2}.weight`,
  `projector_t.{0,2}.weight`, the residual projectors of its distillation loss, `[E, E]` each;
  per-epoch files also `raw_model.<OpenAI key>`, a copy of the frozen original CLIP, its
  teacher): Open-VCLIP's model, scored with FROSTER's 29 templates. For inference both are
  dropped, by name. A run that starts from such a file with the `froster` objective keeps them
  (`read` returns them as `projectors`, in the model's parameter layout, and `teacher`, an
  OpenAI-keyed state dict): the projectors continue training and the copy is θ₀, the teacher.

ViFi-CLIP's files pickle a yacs `CfgNode` beside the weights, which `torch.load(weights_only=True)`
refuses; `read_restricted` then reads the file with a restricted unpickler that builds tensors
and plain containers only and turns every other object into an inert placeholder (no code of the
file's classes runs). Only a file that then turns out to be a recipe's is accepted this way;
any other is refused as before.

This module maps keys; `weights.read_checkpoint` reads the files and calls it (the import runs
one way: weights → importers).
"""

from __future__ import annotations

import collections
import copyreg
import pickle
import types
from collections.abc import Mapping
from typing import Any

import numpy as np
from absl import logging

from actionclip_jax import weight_files

RECIPES = {
    "vificlip": {
        "name": "ViFi-CLIP",
        "video": {"frame_stage": "none", "head": "meanP", "pixel_norm": "imagenet"},
        "templates": "vificlip",
        "class_names": "verbatim",
        "view_reduce": "softmax_sum",
    },
    "open_vclip": {
        "name": "Open-VCLIP",
        "video": {"frame_stage": "neighbour", "head": "mean_logits", "pixel_norm": "clip"},
        "templates": "openvclip28",
        "class_names": "words",
        "view_reduce": "logit_sum",
    },
    "froster": {
        "name": "FROSTER",
        "video": {"frame_stage": "neighbour", "head": "mean_logits", "pixel_norm": "clip"},
        # Its 28 + bare templates on plain names (its "Name: description" texts need the file
        # of descriptions, `text.descriptions`).
        "templates": "froster29",
        "class_names": "words",
        "view_reduce": "logit_sum",
    },
}

# FROSTER's projector tensors (PyTorch `nn.Sequential` indices 0 and 2: Linear, GELU, Linear) and
# the parameters they become (`models/projector.py`).
FROSTER_PROJECTORS = {
    "projector_v.0.weight": ("projector_v", "linear1"),
    "projector_v.2.weight": ("projector_v", "linear2"),
    "projector_t.0.weight": ("projector_t", "linear1"),
    "projector_t.2.weight": ("projector_t", "linear2"),
}
FROSTER_TEACHER = "raw_model."

# ViFi-CLIP keys that are not weights of the model: the prompts' token embeddings (recomputed
# from the class names here).
VIFICLIP_DROPPED = ("prompt_learner.complete_text_embeddings",)
# ViFi-CLIP's bridge-and-prompt variant (learned text context and visual prompt tokens).
_VIFICLIP_PROMPTING = ("prompt_learner.ctx", "prompt_learner.token_prefix",
                       "prompt_learner.token_suffix", "VPT")  # fmt: skip


class RecipeError(ValueError):
    """A recipe's checkpoint that cannot be imported (`weights` raises it as CheckpointError)."""


def _error(message):
    return RecipeError(message)


# ------------------------------------------------------------------------------ reading files


class _Opaque(dict):
    """What the restricted unpickler makes of any object it does not know: an inert mapping."""

    def __init__(self, *args, **kwargs):  # pylint: disable=super-init-not-called
        del args, kwargs

    def __setstate__(self, state):
        self.__dict__["_state"] = state


def _restricted_pickle_module():
    import torch  # pylint: disable=import-outside-toplevel

    allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("copyreg", "_reconstructor"): copyreg._reconstructor,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "object"): object,
        ("builtins", "dict"): dict,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    }

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in allowed:
                return allowed[(module, name)]
            if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
                return getattr(torch, name)
            # Anything else (e.g. yacs' CfgNode) becomes an inert mapping of that name.
            return type(str(name), (_Opaque,), {"__module__": f"opaque.{module}"})

    return types.SimpleNamespace(Unpickler=Unpickler, load=pickle.load, __name__="restricted")


def read_restricted(path, refusal: Exception) -> Any:
    """A `.pt` file that `torch.load(weights_only=True)` refused (`refusal`), read with the
    restricted unpickler (module docstring); re-raises `refusal` when that fails too."""
    import torch  # pylint: disable=import-outside-toplevel

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=False,
                         pickle_module=_restricted_pickle_module())  # fmt: skip
    except Exception as inner:  # noqa: BLE001 - the refusal says it best
        raise refusal from inner
    logging.info("%s: read with the restricted unpickler (non-tensor objects ignored)", path)
    return obj


# ---------------------------------------------------------------------------------- detection


def _keys(obj, field) -> list[str]:
    value = obj.get(field) if isinstance(obj, Mapping) else None
    return list(value) if isinstance(value, Mapping) else []


def detect(obj) -> str | None:
    """The recipe (`RECIPES` key) of a read checkpoint, or None for CLIP / ActionCLIP files."""
    model_keys = [k.removeprefix("module.") for k in _keys(obj, "model")]
    if any(k.startswith(("image_encoder.", "text_encoder.")) for k in model_keys):
        return "vificlip"
    state_keys = _keys(obj, "model_state")
    if state_keys and any(k.startswith("model.visual.") for k in state_keys):
        if any(k in FROSTER_PROJECTORS or k.startswith(FROSTER_TEACHER) for k in state_keys):
            return "froster"
        return "open_vclip"
    return None


# ---------------------------------------------------------------------------------- importing


def _tensors(obj, field, path) -> dict[str, np.ndarray]:
    """The tensors of `obj[field]` as float32 numpy arrays (fp16 widened exactly)."""
    try:
        return weight_files.as_state_dict(obj[field], path, field)
    except weight_files.CheckpointError as err:
        raise _error(str(err)) from err


_TOKEN_HINT = (
    "ViFi-CLIP checkpoints leave out CLIP's token embedding (their prompts' embeddings were "
    "stored instead); pass the OpenAI CLIP file the model was trained from: "
    "--config.init.clip=ViT-B-16.pt (predict, convert: --clip=ViT-B-16.pt)"
)


def _vificlip(obj, path, token_embedding):
    raw = _tensors(obj, "model", path)
    sd, dropped, prompting, unknown = {}, [], [], []
    for key, value in raw.items():
        k = key.removeprefix("module.")
        if k in VIFICLIP_DROPPED:
            dropped.append(k)
        elif any(p in k for p in _VIFICLIP_PROMPTING):
            prompting.append(k)
        elif k.startswith("image_encoder."):
            sd["visual." + k.removeprefix("image_encoder.")] = value
        elif k.startswith("text_encoder."):
            sd[k.removeprefix("text_encoder.")] = value
        elif k == "logit_scale":
            sd[k] = value
        else:
            unknown.append(k)
    if prompting:
        raise _error(
            f"{path} is ViFi-CLIP's bridge-and-prompt variant (e.g. {prompting[:3]}): its learned "
            "prompt vectors are not supported; import the fine-tuned ViFi-CLIP model instead"
        )
    if unknown:
        raise _error(f"{path}: ViFi-CLIP checkpoint with unknown tensors {unknown[:5]}")
    if "ln_final.weight" not in sd:
        raise _error(f"{path}: ViFi-CLIP checkpoint without text_encoder.ln_final.weight")
    if "token_embedding.weight" in sd:
        raise _error(f"{path}: a ViFi-CLIP checkpoint with a token embedding of its own")
    table = token_embedding()
    if table is None:
        raise _error(f"{path}: {_TOKEN_HINT}")
    width = sd["ln_final.weight"].shape[0]
    if np.ndim(table) != 2 or table.shape[1] != width:
        raise _error(
            f"{path}: the token embedding given (shape {tuple(np.shape(table))}) does not fit its "
            f"text tower ({width} wide): not the CLIP this ViFi-CLIP model was trained from"
        )
    sd["token_embedding.weight"] = np.asarray(table, np.float32)
    return sd, dropped


def _open_vclip(obj, path):
    raw = _tensors(obj, "model_state", path)
    foreign = [k for k in raw if not k.startswith("model.")]
    if foreign:
        raise _error(f"{path}: Open-VCLIP checkpoint with tensors outside model.: {foreign[:5]}")
    return {k.removeprefix("model."): v for k, v in raw.items()}, []


def _froster(obj, path):
    """`(CLIP state dict, dropped names, extra)`: `extra` holds `projectors` (parameter trees)
    and `teacher` (the `raw_model.` copy, OpenAI keys) where the file has them."""
    raw = _tensors(obj, "model_state", path)
    sd, teacher, projectors, unknown = {}, {}, {}, []
    for k, v in raw.items():
        if k.startswith("model."):
            sd[k.removeprefix("model.")] = v
        elif k.startswith(FROSTER_TEACHER):
            teacher[k.removeprefix(FROSTER_TEACHER)] = v
        elif k in FROSTER_PROJECTORS:
            projectors[k] = v
        else:
            unknown.append(k)
    if unknown:
        raise _error(f"{path}: FROSTER checkpoint with unknown tensors {unknown[:5]}")
    if "text_projection" not in sd:
        raise _error(f"{path}: FROSTER checkpoint without model.text_projection")
    if projectors and set(projectors) != set(FROSTER_PROJECTORS):
        missing = sorted(set(FROSTER_PROJECTORS) - set(projectors))
        raise _error(f"{path}: FROSTER checkpoint with only some projector tensors (no {missing})")
    e = sd["text_projection"].shape[1]
    bad = [k for k, v in projectors.items() if tuple(v.shape) != (e, e)]
    if bad:
        raise _error(f"{path}: FROSTER projector tensors {bad} are not [{e}, {e}] (the embedding)")
    if teacher and set(teacher) != set(sd):
        differ = sorted(set(teacher) ^ set(sd))
        raise _error(
            f"{path}: its raw_model. copy of CLIP does not hold the model's tensors (differs in "
            f"{differ[:5]})"
        )
    dropped = sorted(projectors)
    if teacher:
        dropped.append(f"raw_model.* ({len(teacher)} tensors: the frozen teacher, a copy of the "
                       "original CLIP)")  # fmt: skip
    extra = {}
    if projectors:
        tree = {}
        for key, (module, layer) in FROSTER_PROJECTORS.items():
            # PyTorch Linear weights are [out, in]; Dense kernels [in, out].
            tree.setdefault(module, {})[layer] = {"kernel": np.ascontiguousarray(projectors[key].T)}
        extra["projectors"] = tree
    if teacher:
        extra["teacher"] = teacher
    return sd, dropped, extra


def read(obj, path, recipe: str, token_embedding=lambda: None) -> dict:
    """A recipe's checkpoint as `weights.read_checkpoint` returns files: `{'kind', 'clip',
    'fusion', 'video', 'recipe', 'dropped'}` (`video`: the model it describes), and for FROSTER
    `projectors` and `teacher` where the file holds them (the module docstring).

    `token_embedding`: called for CLIP's token embedding `[V, W]` when the file lacks it
    (ViFi-CLIP); None = not given (an error naming what to pass).
    """
    extra = {}
    if recipe == "vificlip":
        sd, dropped = _vificlip(obj, path, token_embedding)
    elif recipe == "open_vclip":
        sd, dropped = _open_vclip(obj, path)
    elif recipe == "froster":
        sd, dropped, extra = _froster(obj, path)
    else:
        raise ValueError(f"unknown recipe {recipe!r}; one of {tuple(RECIPES)}")
    ignored = sorted(k for k in obj if k not in ("model", "model_state"))
    logging.info(
        "%s: a %s checkpoint; %d tensors imported, dropped %s, ignored (not weights) %s",
        path, RECIPES[recipe]["name"], len(sd), dropped or "none", ignored or "none",
    )  # fmt: skip
    return {
        "kind": recipe,
        "recipe": RECIPES[recipe]["name"],
        "clip": sd,
        "fusion": None,
        "video": dict(RECIPES[recipe]["video"]),
        # Each recipe fine-tunes OpenAI's CLIP, whose MLPs use QuickGELU; its files do not say so.
        "settings": {"activation": "quick_gelu"},
        "dropped": dropped,
        **extra,
    }
