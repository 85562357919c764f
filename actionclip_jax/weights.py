"""Reading CLIP and ActionCLIP checkpoints into Flax parameters.

Sources:
- OpenAI's released `.pt` files (TorchScript archives, mixed fp16/fp32 tensors);
- plain state dicts with OpenAI's key names (`.pt`, `.bin` or `.safetensors`), as OpenAI's CLIP
  and open_clip write them; open_clip hub folders (`open_clip_config.json` + weights);
- ActionCLIP training checkpoints `{'epoch', 'model_state_dict', 'fusion_model_state_dict', ...}`;
- Hugging Face `CLIPModel` folders (`config.json` + `model.safetensors` or `pytorch_model.bin`),
  see `hf_clip`;
- directories written by `python -m actionclip_jax.convert` (orbax + a JSON of the model's sizes),
  which load without PyTorch, as do safetensors files;
- the released checkpoints of ViFi-CLIP, Open-VCLIP and FROSTER (`actionclip_jax.importers`).

Every size is read off the checkpoint (or its config). Import is strict: every tensor lands in
exactly one parameter or is named as dropped, and every parameter is set; fp16/bf16 tensors are
widened to fp32 exactly, never rounded.
"""

import json
import re
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from etils import epath

from actionclip_jax import checkpointing, hf_clip, importers, open_clip_config, runs
from actionclip_jax.models import actionclip
from actionclip_jax.models.clip import ACTIVATIONS, CLIP
from actionclip_jax.weight_files import META_FILE, CheckpointError, as_state_dict, is_torchscript
from actionclip_jax.weight_files import read_safetensors, read_torch_file, sniff
from actionclip_jax.weight_files import torchscript_activation

PARAMS_DIR = "params"
FORMAT_VERSION = 1

# Scalars OpenAI's TorchScript archives carry next to the weights; not parameters.
_ARCHIVE_SCALARS = ("input_resolution", "context_length", "vocab_size")
# OpenAI's CLIP LayerNorm epsilon: files with OpenAI's key names carry no config that could say
# another.
_OPENAI_LN_EPSILON = 1e-5

# ----------------------------------------------------------------------------------- reading


def _read_state_dict_file(path) -> tuple[Any, bool]:
    """`(contents, is_torchscript)` of a weights file: safetensors without torch, else torch."""
    path = epath.Path(path)
    if path.exists() and path.is_file() and path.stat().length and sniff(path) == "safetensors":
        return read_safetensors(path), False
    obj = read_torch_file(path)
    return obj, is_torchscript(path)


def _strip_prefix(sd: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    # DistributedDataParallel checkpoints (open_clip's, for one) prefix every key with `module.`.
    if sd and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix) :]: v for k, v in sd.items()}
    return dict(sd)


def read_checkpoint(path, clip_source=None) -> dict[str, Any]:
    """Reads any supported checkpoint file or folder (not a converted directory).

    `clip_source`: the OpenAI CLIP file that a ViFi-CLIP checkpoint takes its token embedding from.

    Returns:
      `{'kind', 'clip': state dict, 'fusion': state dict or None, 'settings', 'dropped'}` with
      numpy float32 tensors under OpenAI's / the original's key names. `kind` is one of `clip`,
      `actionclip`, `hf_clip`, `open_clip` or a recipe of `importers.RECIPES`; `settings` holds
      the `CLIP` arguments the file itself fixes beyond what its keys show (e.g. the activation;
      all sizes for a Hugging Face folder); `dropped` names the tensors that are no parameters
      and were left out. A recipe's file adds `video` (the model it describes) and `recipe` (its
      name), and FROSTER's `projectors` and `teacher` where it holds them.
    """
    path = epath.Path(path)
    if path.is_dir():
        if hf_clip.is_hf_folder(path):
            ckpt = hf_clip.read_hf_clip(path)
            sizes = ckpt.pop("sizes")
            return {**ckpt, "settings": sizes}
        config = open_clip_config.config_beside(path)
        if config is None:
            raise CheckpointError(
                f"{path} is a directory but no checkpoint: it has neither {META_FILE} (a "
                "converted checkpoint, written by `python -m actionclip_jax.convert`), "
                f"{hf_clip.CONFIG_FILE} (a Hugging Face CLIPModel folder) nor "
                f"{open_clip_config.CONFIG_FILE} (an open_clip folder)"
            )
        file = open_clip_config.weights_in_folder(path)
        if file is None:
            raise CheckpointError(
                f"{path} has {open_clip_config.CONFIG_FILE} but no weights file "
                f"({' or '.join(open_clip_config.WEIGHT_FILES)})"
            )
        path = file
    try:
        obj, scripted = _read_state_dict_file(path)
    except CheckpointError as err:  # ViFi-CLIP's files pickle their yacs config beside weights
        if not str(err).startswith("refusing to load"):
            raise
        obj, scripted = importers.read_restricted(path, err), False
        if importers.detect(obj) is None:  # only a recipe's file earns the lenient reading
            raise
    recipe = importers.detect(obj)
    if recipe is not None:
        try:
            return importers.read(obj, path, recipe, lambda: _token_embedding(clip_source))
        except importers.RecipeError as err:
            raise CheckpointError(str(err)) from err
    if isinstance(obj, Mapping) and "model_state_dict" in obj:
        fusion = obj.get("fusion_model_state_dict")
        return {
            "kind": "actionclip",
            "clip": as_state_dict(obj["model_state_dict"], path, "model_state_dict"),
            "fusion": None
            if fusion is None
            else as_state_dict(fusion, path, "fusion_model_state_dict"),
            # The original's CLIP is OpenAI's, QuickGELU throughout.
            "settings": {"activation": "quick_gelu"},
            "dropped": [],
        }
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    sd = _strip_prefix(as_state_dict(obj, path, "the file"), "module.")
    dropped = sorted(k for k in _ARCHIVE_SCALARS if k in sd)
    for k in dropped:
        sd.pop(k)
    settings, kind = {}, "clip"
    if scripted:
        act = torchscript_activation(path)
        if act:
            settings["activation"] = act
    elif (config := open_clip_config.config_beside(path)) is not None:
        settings, kind = open_clip_config.model_settings(config), "open_clip"
    return {"kind": kind, "clip": sd, "fusion": None, "settings": settings, "dropped": dropped}


def _token_embedding(clip_source):
    """CLIP's token embedding `[V, W]` from the CLIP file `clip_source` (None when not given)."""
    if not clip_source:
        return None
    if is_converted(clip_source) or checkpointing.is_run(clip_source):
        return load_clip(clip_source)[1]["token_embedding"]["embedding"]
    sd = read_checkpoint(clip_source)["clip"]
    if "token_embedding.weight" not in sd:
        raise CheckpointError(f"{clip_source} holds no token_embedding.weight: not a CLIP file")
    return sd["token_embedding.weight"]


def resolve_clip_args(ckpt, activation: str | None = None, source="checkpoint") -> dict:
    """The `CLIP` arguments of a read checkpoint: sizes off its keys, plus what it fixes.

    The MLP activation comes from the file where it says it, else from `activation`; a plain
    state dict with OpenAI's key names does not say it (OpenAI's CLIP and open_clip both write
    such files, with QuickGELU and GELU), so then `activation` must be given.
    """
    settings = dict(ckpt.get("settings") or {})
    if "image_resolution" in settings:  # a config that gives every size (Hugging Face)
        args = settings
    else:
        args = {**clip_sizes(ckpt["clip"], source), **settings}
    found = args.get("activation")
    if activation is not None:
        if activation not in ACTIVATIONS:
            raise CheckpointError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if found is not None and found != activation:
            raise CheckpointError(
                f"{source} uses the activation {found!r}, but activation={activation!r} was "
                "asked; drop the flag or pass the checkpoint's own"
            )
        found = activation
    if found is None:
        raise CheckpointError(
            f"{source} is a plain state dict with OpenAI CLIP key names, which does not say its "
            "MLP activation (OpenAI's CLIP: quick_gelu; most open_clip models: gelu); pass "
            "--activation=quick_gelu or --activation=gelu (activation= in load_clip / "
            "load_actionclip, init.activation in a training config)"
        )
    args["activation"] = found
    args.setdefault("ln_epsilon", _OPENAI_LN_EPSILON)
    return args


# ------------------------------------------------------------------------------------ key mapping


def clip_sizes(sd: Mapping[str, np.ndarray], source="checkpoint") -> dict[str, int]:
    """The CLIP module's size arguments, read off a state dict (as OpenAI's `build_model`)."""
    if "visual.proj" not in sd:
        if any(k.startswith(("visual.layer1.", "visual.attnpool.")) for k in sd):
            raise CheckpointError(
                f"{source} is a ResNet CLIP (e.g. RN50); only ViT CLIP models are "
                "supported (ViT-B/32, ViT-B/16, ViT-L/14, ...)"
            )
        sample = ", ".join(sorted(sd)[:8]) or "none"
        raise CheckpointError(
            f"{source} is not a CLIP ViT state dict: key 'visual.proj' is missing "
            f"(first keys: {sample})"
        )
    need = [
        "visual.conv1.weight",
        "visual.positional_embedding",
        "text_projection",
        "positional_embedding",
        "token_embedding.weight",
        "ln_final.weight",
    ]
    missing = [k for k in need if k not in sd]
    if missing:
        raise CheckpointError(f"{source} lacks the CLIP keys {missing}")

    def layer_count(prefix):
        ids = {int(m.group(1)) for k in sd for m in [re.match(prefix + r"(\d+)\.", k)] if m}
        if ids != set(range(len(ids))):
            raise CheckpointError(
                f"{source}: blocks under {prefix} are not numbered 0..n-1: {sorted(ids)}"
            )
        return len(ids)

    conv = sd["visual.conv1.weight"]  # [W, 3, P, P]
    grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    width_t = sd["ln_final.weight"].shape[0]
    return dict(
        embed_dim=int(sd["text_projection"].shape[1]),
        image_resolution=int(conv.shape[-1] * grid),
        vision_layers=layer_count(r"visual\.transformer\.resblocks\."),
        vision_width=int(conv.shape[0]),
        vision_patch_size=int(conv.shape[-1]),
        context_length=int(sd["positional_embedding"].shape[0]),
        vocab_size=int(sd["token_embedding.weight"].shape[0]),
        transformer_width=int(width_t),
        transformer_heads=int(width_t // 64),
        transformer_layers=layer_count(r"transformer\.resblocks\."),
    )


def torch_key_to_flax(
    key: str, ndim: int
) -> tuple[tuple[str, ...], Callable[[np.ndarray], np.ndarray]]:
    """Maps a PyTorch key to a Flax parameter path and the transform of its tensor.

    The rules are generic (dots → path, list index `name.{i}` → `name_{i}`, Linear weights
    transposed, LayerNorm weight → scale), so CLIP's and every ActionCLIP head's keys share them.
    """
    parts = [p for p in key.split(".") if p != "net"]  # the TSM wrapper (`.net.`) adds no params
    path = []
    for p in parts:
        if p.isdigit() and path:
            path[-1] = f"{path[-1]}_{p}"
        else:
            path.append(p)
    leaf = path[-1]
    ident = lambda x: x
    if leaf == "in_proj_weight":
        return (*path[:-1], "in_proj", "kernel"), lambda x: x.T
    if leaf == "in_proj_bias":
        return (*path[:-1], "in_proj", "bias"), ident
    if leaf == "weight":
        if path[-2].endswith(("embedding", "embeddings")):  # nn.Embedding
            return (*path[:-1], "embedding"), ident
        if ndim == 4:  # Conv2d [O, I, kh, kw] → [kh, kw, I, O]
            return (*path[:-1], "kernel"), lambda x: x.transpose(2, 3, 1, 0)
        if ndim == 3:  # Conv1d [O, I/groups, k] → [k, I/groups, O]
            return (*path[:-1], "kernel"), lambda x: x.transpose(2, 1, 0)
        if ndim == 2:  # Linear [out, in] → [in, out]
            return (*path[:-1], "kernel"), lambda x: x.T
        if ndim == 1:  # LayerNorm
            return (*path[:-1], "scale"), ident
    return tuple(path), ident


def state_dict_to_params(
    sd: Mapping[str, np.ndarray], expected, source="checkpoint", key_map=torch_key_to_flax
):
    """Builds the parameter tree `expected` (shapes, e.g. from `jax.eval_shape`) from `sd`, strictly."""
    flat_expected = {
        tuple(k.key for k in path): leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(expected)
    }
    flat = {}
    leftover = []
    for key, value in sd.items():
        path, fn = key_map(key, value.ndim)
        if path not in flat_expected:
            leftover.append(key)
            continue
        if path in flat:
            raise CheckpointError(
                f"{source}: two keys map to the parameter {'/'.join(path)} (the second is {key!r})"
            )
        value = np.asarray(fn(value), dtype=np.float32)
        want = tuple(flat_expected[path].shape)
        if value.shape != want:
            raise CheckpointError(
                f"{source}: {key!r} has shape {value.shape} after conversion, but the "
                f"parameter {'/'.join(path)} needs {want}"
            )
        flat[path] = value
    if leftover:
        raise CheckpointError(
            f"{source}: {len(leftover)} tensors fit no parameter of the model "
            f"(e.g. {leftover[:5]}); is this the right kind of checkpoint?"
        )
    unset = ["/".join(p) for p in flat_expected if p not in flat]
    if unset:
        raise CheckpointError(
            f"{source}: {len(unset)} parameters are missing from the checkpoint "
            f"(e.g. {unset[:5]}); the file is incomplete or of another model"
        )
    tree = {}
    for path, value in flat.items():
        node = tree
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = value
    return tree


def abstract_params(model, *init_args):
    return jax.eval_shape(lambda *a: model.init(jax.random.key(0), *a), *init_args)["params"]


def clip_dummy_inputs(sizes: Mapping[str, int], num_images: int = 1):
    r = sizes["image_resolution"]
    return (
        jax.ShapeDtypeStruct((num_images, r, r, 3), jnp.float32),
        jax.ShapeDtypeStruct((1, sizes["context_length"]), jnp.int32),
    )


def clip_params_from_state_dict(sd, source="checkpoint", args: Mapping | None = None):
    """Returns `(sizes, params)` for a CLIP ViT state dict (keys as in OpenAI's, fp16 or fp32).

    `args` are the `CLIP` arguments (from `resolve_clip_args`); by default the sizes off the keys.
    """
    if "visual.time_embedding" in sd:
        raise CheckpointError(
            f"{source} holds a joint (space-time) ActionCLIP image tower; load it "
            "with actionclip_jax.load_actionclip"
        )
    sizes = dict(args) if args is not None else clip_sizes(sd, source)
    expected = abstract_params(CLIP(**sizes), *clip_dummy_inputs(sizes))
    return sizes, state_dict_to_params(sd, expected, source)


# Keys that identify each temporal head in a fusion state dict (after the `module.` prefix).
_HEAD_KEYS = {
    "transf": "transformer.resblocks.0.attn.in_proj_weight",
    "transf_cls": "transformer.cls_token",
    "lstm": "lstm_visual.weight_ih_l0",
    "conv1d": "shift.weight",
}


def strip_data_parallel(sd: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in sd.items()}


def infer_video_config(clip_sd, fusion_sd, source="checkpoint") -> dict:
    """The visual prompt of an ActionCLIP checkpoint, read off its keys.

    Returns `frame_stage`, `head`, `position_rows` (transf), `conv1d_original` and `num_frames`
    where the checkpoint fixes it (joint's time embedding, transf_cls's position table), else None.
    """
    fusion_sd = fusion_sd or {}
    heads = [h for h, k in _HEAD_KEYS.items() if k in fusion_sd]
    if len(heads) > 1:
        raise CheckpointError(f"{source}: the fusion state dict mixes the heads {heads}")
    if not heads and any(k != "frame_position_embeddings.weight" for k in fusion_sd):
        raise CheckpointError(
            f"{source}: unrecognised fusion keys {sorted(fusion_sd)[:5]}; expected the keys of "
            "one of the original's heads (Transf, Transf_cls, LSTM, Conv_1D) or none (meanP)"
        )
    head = heads[0] if heads else "meanP"
    if "visual.time_embedding" in clip_sd:
        frame_stage = "joint"
    elif any(re.match(r"visual\.transformer\.resblocks\.\d+\.net\.", k) for k in clip_sd):
        frame_stage = "shift"
    else:
        frame_stage = "none"
    num_frames = None
    if frame_stage == "joint":
        num_frames = int(clip_sd["visual.time_embedding"].shape[0])
    elif head == "transf_cls":
        num_frames = int(fusion_sd["transformer.pos_embed"].shape[1]) - 1
    rows = fusion_sd.get("frame_position_embeddings.weight")
    block = {
        "transf": r"transformer\.resblocks\.(\d+)\.",
        "transf_cls": r"transformer\.transformer_enc\.layers\.(\d+)\.",
    }
    layers = 6
    if head in block:
        layers = len({m.group(1) for k in fusion_sd for m in [re.match(block[head], k)] if m})
    return {
        "frame_stage": frame_stage,
        "head": head,
        "position_rows": int(rows.shape[0]) if head == "transf" else 77,
        # Checkpoints of the original were trained with its reshape; keep it for them.
        "conv1d_original": head == "conv1d",
        "head_layers": layers,
        "num_frames": num_frames,
    }


def resolve_video_config(inferred: dict, num_frames: int, source="checkpoint", **overrides):
    """Applies explicit overrides and checks `num_frames` against what the checkpoint fixes."""
    video = dict(inferred)
    for k, v in overrides.items():
        if v is not None:
            video[k] = v
    fixed = inferred.get("num_frames")
    if fixed is not None and num_frames != fixed:
        why = "joint time embedding" if video["frame_stage"] == "joint" else "transf_cls positions"
        raise CheckpointError(
            f"{source} was trained with {fixed} frames (its {why} has {fixed} rows), but "
            f"num_frames={num_frames} was asked; pass num_frames={fixed}"
        )
    if video["head"] == "transf" and num_frames > video["position_rows"]:
        raise CheckpointError(
            f"{source}: the transf head's frame-position table has {video['position_rows']} rows, "
            f"fewer than num_frames={num_frames}; use at most {video['position_rows']} frames"
        )
    video["num_frames"] = num_frames
    return video


def build_actionclip(sizes, video: Mapping, dtype=jnp.float32, remat: bool = False):
    return actionclip.build({"clip": sizes, "video": video}, dtype=dtype, remat=remat)


def actionclip_params_from_checkpoint(
    ckpt, num_frames, source="checkpoint", activation: str | None = None, **overrides
):
    """Returns `(sizes, video config, params)` of the ActionCLIP model in a read checkpoint.

    `sizes` are all the `CLIP` arguments (sizes, activation, LayerNorm epsilon).
    """
    clip_sd = ckpt["clip"]
    fusion_sd = strip_data_parallel(ckpt["fusion"] or {})
    # A recipe's file says what its keys cannot (neighbour attention, pooling, pixels).
    inferred = {**infer_video_config(clip_sd, fusion_sd, source), **ckpt.get("video", {})}
    video = resolve_video_config(inferred, num_frames, source, **overrides)
    if video["head"] != "transf" and "frame_position_embeddings.weight" in fusion_sd:
        # The original creates this table for every head but only Transf reads it.
        fusion_sd.pop("frame_position_embeddings.weight")
        ckpt["dropped"] = [
            *ckpt.get("dropped", []),
            "fusion_model_state_dict: frame_position_embeddings.weight",
        ]
    sizes = resolve_clip_args(ckpt, activation, source)
    expected = actionclip.abstract_params(build_actionclip(sizes, video))
    sd = {f"clip.{k}": v for k, v in clip_sd.items()}
    sd.update({f"fusion.{k}": v for k, v in fusion_sd.items()})
    return sizes, video, state_dict_to_params(sd, expected, source)


# ------------------------------------------------------------------------- converted directories


def save_converted(directory, meta: dict, params, overwrite: bool = False):
    """Writes `params` as an orbax checkpoint and `meta` (sizes, provenance) as JSON beside it."""
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel

    directory = epath.Path(directory)
    if directory.exists() and any(directory.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"output directory {directory} exists and is not empty; choose another "
                "or pass --overwrite"
            )
        if not (directory / META_FILE).exists():
            raise FileExistsError(
                f"refusing to overwrite {directory}: it is not a converted checkpoint"
            )
        directory.rmtree()
    directory.mkdir(parents=True, exist_ok=True)
    ckptr = ocp.StandardCheckpointer()
    ckptr.save((directory / PARAMS_DIR).resolve(), jax.tree_util.tree_map(np.asarray, params))
    ckptr.wait_until_finished()
    (directory / META_FILE).write_text(
        json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=2, sort_keys=True)
    )


def read_converted_meta(directory) -> dict:
    path = epath.Path(directory) / META_FILE
    if not path.exists():
        raise CheckpointError(f"{directory} is not a converted checkpoint: {META_FILE} is missing")
    meta = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {meta.get('format_version')} is not "
            f"{FORMAT_VERSION}; convert the checkpoint again with this version"
        )
    return meta


def restore_converted_params(directory, expected):
    """Restores the parameters of a converted directory onto the abstract tree `expected`."""
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel

    target = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, jnp.float32), expected)
    path = (epath.Path(directory) / PARAMS_DIR).resolve()
    try:
        return ocp.StandardCheckpointer().restore(path, target)
    except (ValueError, KeyError, FileNotFoundError) as e:
        raise CheckpointError(f"cannot restore the parameters in {path}: {e}") from e


# ----------------------------------------------------------------------------------- public API


def is_converted(path) -> bool:
    return (epath.Path(path) / META_FILE).exists()


def _load_converted_actionclip(path, num_frames, activation: str | None = None):
    meta = read_converted_meta(path)
    sizes, stored = dict(meta["clip"]), meta["video"]
    # Directories converted before the activation was recorded hold OpenAI-style CLIP files, which
    # were read as QuickGELU; a stated activation must not be contradicted.
    stored_act = sizes.get("activation")
    if activation is not None and stored_act is not None and activation != stored_act:
        raise CheckpointError(
            f"{path} was converted with the activation {stored_act!r}, but "
            f"activation={activation!r} was asked; drop the flag or pass the checkpoint's own"
        )
    sizes["activation"] = stored_act or activation or "quick_gelu"
    fixed = stored["num_frames"] if _fixes_num_frames(stored) else None
    video = resolve_video_config(
        {**stored, "num_frames": fixed}, num_frames or stored["num_frames"], str(path)
    )
    expected = actionclip.abstract_params(build_actionclip(sizes, video))
    return sizes, video, restore_converted_params(path, expected)


def recorded_run(path) -> dict | None:
    """What a trained model scores with (`objective`, `class_names`, `templates`), as a training
    run's workdir or a directory converted from one records it; None for other checkpoints."""
    if checkpointing.is_run(path):
        return checkpointing.choose_step(path)[1].get("run")
    if is_converted(path):
        return read_converted_meta(path).get("run")
    return None


def _fixes_num_frames(video) -> bool:
    return video["frame_stage"] == "joint" or video["head"] == "transf_cls"


def _log_dropped(ckpt, source):
    if ckpt.get("dropped"):
        logging.info("%s: left out tensors that are no parameters: %s", source, ckpt["dropped"])


def load_clip(path, dtype=jnp.float32, remat: bool = False, activation: str | None = None,
              clip_source=None, original: bool = False):  # fmt: skip
    """Loads CLIP from any supported checkpoint (see the module docstring) or a converted dir.

    `activation` (`quick_gelu` | `gelu`) is needed only for a plain state dict with OpenAI's key
    names, which does not say it; a file that does say it must agree. `clip_source`: see
    `read_checkpoint`. `original=True`: the CLIP the file's model was trained from, where the
    file holds a copy of it (FROSTER's training checkpoints: `raw_model.`, its frozen teacher);
    else its own.

    Returns:
      `(model, params)`: a `CLIP` module (compute `dtype`, fp32 parameters) and its parameters,
      for `model.apply({'params': params}, images, method=model.encode_image)`.
    """
    if checkpointing.is_run(path):
        run = runs.load_run(path)
        if run.model.frame_stage == "joint" or not run.model.with_text:
            raise CheckpointError(
                f"{path} holds a {run.model.frame_stage} ActionCLIP model"
                f"{'' if run.model.with_text else ' without text tower'}; use load_actionclip"
            )
        return CLIP(**run.model.clip_sizes, dtype=dtype, remat=remat), run.params["clip"]
    if is_converted(path):
        sizes, video, params = _load_converted_actionclip(path, None, activation)
        if video["frame_stage"] == "joint":
            raise CheckpointError(f"{path} holds a joint ActionCLIP model; use load_actionclip")
        return CLIP(**sizes, dtype=dtype, remat=remat), params["clip"]
    ckpt = read_checkpoint(path, clip_source)
    sd = ckpt["teacher"] if original and "teacher" in ckpt else ckpt["clip"]
    clip_sd = {k.replace(".net.", "."): v for k, v in sd.items()}
    args = resolve_clip_args({**ckpt, "clip": clip_sd}, activation, str(path))
    sizes, params = clip_params_from_state_dict(clip_sd, str(path), args)
    if ckpt["fusion"]:
        n = len(ckpt["fusion"])
        ckpt["dropped"] = [*ckpt["dropped"], f"fusion_model_state_dict ({n} tensors; the temporal "
                           "head, which load_actionclip reads)"]  # fmt: skip
    _log_dropped(ckpt, path)
    return CLIP(**sizes, dtype=dtype, remat=remat), params


def load_actionclip(
    path,
    num_frames: int | None = None,
    frame_stage: str | None = None,
    head: str | None = None,
    conv1d_original: bool | None = None,
    dtype=jnp.float32,
    remat: bool = False,
    activation: str | None = None,
    step: int | None = None,
    best: bool = False,
    clip_source=None,
    return_info: bool = False,
):
    """Loads the ActionCLIP video model from any supported checkpoint, or a training run.

    The frame stage and the temporal head are read off the checkpoint's keys (an OpenAI CLIP file
    gives `meanP`) or its recipe (ViFi-CLIP, Open-VCLIP, FROSTER); the arguments override them.
    `num_frames` defaults to 8, or to what the checkpoint fixes (joint, transf_cls).
    `activation` as for `load_clip`. `clip_source`: the OpenAI CLIP file a ViFi-CLIP checkpoint
    takes its token embedding from. A training run's workdir gives the model it trained (its
    newest checkpoint, `step`, or the `best` by validation top-1; parameters only).

    Returns:
      `(model, params)` for `model.apply({'params': params}, video, method=model.encode_video)`;
      with `return_info`, also `{'kind': ..., 'recipe': ...}`, what the file is (`kind`:
      'clip', 'actionclip', 'run', or a recipe of `importers.RECIPES`; `recipe`: its name), and
      what a training run that starts from it may keep (FROSTER's files): `projectors`
      (parameters of the model's `projector_v` / `projector_t`) and `teacher` (the `clip`
      parameters of the original CLIP the file carries a copy of).
    """
    if checkpointing.is_run(path):
        run = runs.load_run(path, step=step, best=best, dtype=dtype, remat=remat)
        model, info = run.model, {"kind": "run", "recipe": ""}
        video = dict(actionclip.spec_of(run.model)["video"])
        if num_frames and num_frames != video["num_frames"]:
            video = resolve_video_config(
                {**video, "num_frames": video["num_frames"] if _fixes_num_frames(video) else None},
                num_frames, str(path),
            )  # fmt: skip
            spec = {**actionclip.spec_of(run.model), "video": video}
            model = actionclip.build(spec, dtype=dtype, remat=remat)
        return (model, run.params, info) if return_info else (model, run.params)
    if is_converted(path):
        sizes, video, params = _load_converted_actionclip(path, num_frames, activation)
        meta = read_converted_meta(path)
        info = {"kind": meta.get("source_kind", "converted"), "recipe": meta.get("recipe", "")}
    else:
        ckpt = read_checkpoint(path, clip_source)
        inferred = infer_video_config(
            ckpt["clip"], strip_data_parallel(ckpt["fusion"] or {}), str(path)
        )
        t = num_frames or inferred["num_frames"] or 8
        overrides = dict(frame_stage=frame_stage, head=head, conv1d_original=conv1d_original)
        sizes, video, params = actionclip_params_from_checkpoint(
            ckpt, t, str(path), activation, **overrides
        )
        _log_dropped(ckpt, path)
        info = {"kind": ckpt["kind"], "recipe": ckpt.get("recipe", "")}
        if "projectors" in ckpt:
            info["projectors"] = ckpt["projectors"]
        if "teacher" in ckpt:
            teacher_args = resolve_clip_args({**ckpt, "clip": ckpt["teacher"]}, activation,
                                             str(path))  # fmt: skip
            info["teacher"] = clip_params_from_state_dict(ckpt["teacher"], str(path),
                                                          teacher_args)[1]  # fmt: skip
    model = build_actionclip(sizes, video, dtype=dtype, remat=remat)
    return (model, params, info) if return_info else (model, params)


def convert(checkpoint, output, overwrite: bool = False, activation: str | None = None,
            clip_source=None) -> dict:  # fmt: skip
    """Reads a checkpoint and writes it as a converted directory; returns the metadata.

    Both parts of an ActionCLIP checkpoint are kept, with the visual prompt read off its keys; a
    recipe's checkpoint keeps its model (`video`) and the recipe's name (`recipe`).
    The metadata names the tensors that were left out because they are no parameters. A training
    run's workdir gives its newest checkpoint, and the directory records what the run scores
    with (`run`: objective, class names, prompt templates), which `predict` then uses.
    """
    if checkpointing.is_run(checkpoint):
        run = runs.load_run(checkpoint)
        if not run.model.with_text:
            raise CheckpointError(
                f"{checkpoint} trained a {run.objective} without text tower; a converted directory "
                "holds a video-text model (load the run's workdir itself instead)"
            )
        spec = actionclip.spec_of(run.model)
        meta = {
            "clip": spec["clip"],
            "video": spec["video"],
            "source": str(checkpoint),
            "source_kind": "run",
            "step": run.step,
            "run": run.meta.get("run", {}),
            "recipe": "",
            "dropped": [],
        }
        # What the model scores with (not what only training reads: FROSTER's projectors).
        save_converted(output, meta, actionclip.inference_params(run.params), overwrite=overwrite)
        return meta
    ckpt = read_checkpoint(checkpoint, clip_source)
    inferred = infer_video_config(ckpt["clip"], strip_data_parallel(ckpt["fusion"] or {}))
    t = inferred["num_frames"] or 8
    sizes, video, params = actionclip_params_from_checkpoint(ckpt, t, str(checkpoint), activation)
    meta = {
        "clip": sizes,
        "video": video,
        "source": str(checkpoint),
        "source_kind": ckpt["kind"],
        "recipe": ckpt.get("recipe", ""),
        "dropped": ckpt["dropped"],
    }
    save_converted(output, meta, params, overwrite=overwrite)
    return meta
