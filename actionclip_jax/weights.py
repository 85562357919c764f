"""Reading CLIP and ActionCLIP checkpoints into Flax parameters.

Sources:
- OpenAI's released `.pt` files (TorchScript archives, mixed fp16/fp32 tensors);
- plain PyTorch state-dict `.pt` files;
- ActionCLIP training checkpoints `{'epoch', 'model_state_dict', 'fusion_model_state_dict', ...}`;
- directories written by `python -m actionclip_jax.convert` (orbax + a JSON of the model's sizes),
  which load without PyTorch;
- the released checkpoints of ViFi-CLIP and Open-VCLIP (`actionclip_jax.importers`).

Every size is read off the checkpoint. Import is strict: every tensor lands in exactly one parameter
and every parameter is set; fp16 tensors are widened to fp32 exactly, never rounded.
"""

import json
import pickle
import re
import zipfile
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from actionclip_jax.models import actionclip
from actionclip_jax.models.clip import CLIP

META_FILE = "actionclip_jax.json"
PARAMS_DIR = "params"
FORMAT_VERSION = 1

# Scalars OpenAI's TorchScript archives carry next to the weights; not parameters.
_ARCHIVE_SCALARS = ("input_resolution", "context_length", "vocab_size")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


# ----------------------------------------------------------------------------------- reading .pt


def _require_torch(path):
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise ImportError(
            f"reading the PyTorch file {path} needs torch: `pip install 'actionclip_jax[torch]'` "
            "(or `pip install torch`), or convert it once on a machine with torch: "
            f"`python -m actionclip_jax.convert --checkpoint={path} --output=DIR` and load DIR"
        ) from e
    return torch


def _is_torchscript(path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def read_torch_file(path) -> Any:
    """Loads a `.pt` file without executing pickled code.

    TorchScript archives go through `torch.jit.load` (which runs no Python pickle); everything else
    through `torch.load(weights_only=True)`, which refuses files that need arbitrary objects.
    """
    path = epath.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a directory without {META_FILE}: not a converted checkpoint "
            "(write one with `python -m actionclip_jax.convert`)"
        )
    if path.stat().length == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): the download or copy failed")
    torch = _require_torch(path)
    try:
        if _is_torchscript(path):
            return {
                k: v for k, v in torch.jit.load(str(path), map_location="cpu").state_dict().items()
            }
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only load failed" in str(e).lower() or "weights_only" in str(e):
            raise CheckpointError(
                f"refusing to load {path}: it needs arbitrary pickled Python objects, which could run "
                "code. Re-save it as a plain state dict (torch.save(model.state_dict(), ...)) on a machine "
                f"where you trust it. torch said: {str(e).splitlines()[0]}"
            ) from e
        raise CheckpointError(f"{path} is not a PyTorch checkpoint ({e})") from e
    except Exception as e:  # torch raises many types on garbage input; none is worth leaking
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is truncated, corrupt or not a "
            f"PyTorch checkpoint ({first})"
        ) from e


def _to_numpy(value) -> np.ndarray:
    # `.float()` widens fp16/bf16 exactly; numpy has no bf16 of its own.
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def _as_state_dict(obj, path, what) -> dict[str, np.ndarray]:
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        raise CheckpointError(f"{path}: {what} is not a state dict (a mapping of names to tensors)")
    out = {}
    for k, v in obj.items():
        if not hasattr(v, "shape"):
            raise CheckpointError(
                f"{path}: {what} entry {k!r} is a {type(v).__name__}, not a tensor"
            )
        out[k] = _to_numpy(v)
    return out


def read_checkpoint(path, clip_source=None) -> dict[str, Any]:
    """Reads any supported `.pt` file.

    `clip_source`: the OpenAI CLIP file that a ViFi-CLIP checkpoint takes its token embedding from.

    Returns:
      `{'clip': state dict, 'fusion': state dict or None, 'kind': 'clip' | 'actionclip' | a
      recipe of `importers.RECIPES`}` with numpy float32 tensors and the keys as stored (a
      recipe's keys mapped to OpenAI's; it adds `video`, the model it describes, `recipe` and
      `dropped`).
    """
    from actionclip_jax import importers  # pylint: disable=import-outside-toplevel

    try:
        obj = read_torch_file(path)
    except CheckpointError as err:  # ViFi-CLIP's files pickle their yacs config beside weights
        if not str(err).startswith("refusing to load"):
            raise
        obj = importers.read_restricted(path, err)
        if importers.detect(obj) is None:  # only a recipe's file earns the lenient reading
            raise
    recipe = importers.detect(obj)
    if recipe is not None:
        clip_table = lambda: (  # noqa: E731
            load_clip(clip_source)[1]["token_embedding"]["embedding"] if clip_source else None
        )
        try:
            return importers.read(obj, path, recipe, clip_table)
        except importers.RecipeError as err:
            raise CheckpointError(str(err)) from err
    if isinstance(obj, Mapping) and "model_state_dict" in obj:
        fusion = obj.get("fusion_model_state_dict")
        return {
            "kind": "actionclip",
            "clip": _as_state_dict(obj["model_state_dict"], path, "model_state_dict"),
            "fusion": None
            if fusion is None
            else _as_state_dict(fusion, path, "fusion_model_state_dict"),
        }
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    sd = _as_state_dict(obj, path, "the file")
    for k in _ARCHIVE_SCALARS:
        sd.pop(k, None)
    return {"kind": "clip", "clip": sd, "fusion": None}


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


def clip_params_from_state_dict(sd, source="checkpoint"):
    """Returns `(sizes, params)` for a CLIP ViT state dict (keys as in OpenAI's, fp16 or fp32)."""
    if "visual.time_embedding" in sd:
        raise CheckpointError(
            f"{source} holds a joint (space-time) ActionCLIP image tower; load it "
            "with actionclip_jax.load_actionclip"
        )
    sizes = clip_sizes(sd, source)
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


def actionclip_params_from_checkpoint(ckpt, num_frames, source="checkpoint", **overrides):
    """Returns `(sizes, video config, params)` of the ActionCLIP model in a read checkpoint."""
    clip_sd = ckpt["clip"]
    fusion_sd = strip_data_parallel(ckpt["fusion"] or {})
    # A recipe's file says what its keys cannot (neighbour attention, pooling, pixels).
    inferred = {**infer_video_config(clip_sd, fusion_sd, source), **ckpt.get("video", {})}
    video = resolve_video_config(inferred, num_frames, source, **overrides)
    if video["head"] != "transf":
        # The original creates this table for every head but only Transf reads it.
        fusion_sd.pop("frame_position_embeddings.weight", None)
    sizes = clip_sizes(clip_sd, source)
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


def _load_converted_actionclip(path, num_frames):
    meta = read_converted_meta(path)
    sizes, stored = meta["clip"], meta["video"]
    fixed = stored["num_frames"] if _fixes_num_frames(stored) else None
    video = resolve_video_config(
        {**stored, "num_frames": fixed}, num_frames or stored["num_frames"], str(path)
    )
    expected = actionclip.abstract_params(build_actionclip(sizes, video))
    return sizes, video, restore_converted_params(path, expected)


def _fixes_num_frames(video) -> bool:
    return video["frame_stage"] == "joint" or video["head"] == "transf_cls"


def load_clip(path, dtype=jnp.float32, remat: bool = False, clip_source=None, original=False):
    """Loads CLIP from an OpenAI `.pt`, a state dict, an ActionCLIP checkpoint, a recipe's
    checkpoint (`clip_source`: see `read_checkpoint`) or a converted dir.

    `original=True`: the CLIP the file's model was trained from, where the file holds a copy of
    it (FROSTER's training checkpoints: `raw_model.`, its frozen teacher); else its own.

    Returns:
      `(model, params)`: a `CLIP` module (compute `dtype`, fp32 parameters) and its parameters,
      for `model.apply({'params': params}, images, method=model.encode_image)`.
    """
    if is_converted(path):
        sizes, video, params = _load_converted_actionclip(path, None)
        if video["frame_stage"] == "joint":
            raise CheckpointError(f"{path} holds a joint ActionCLIP model; use load_actionclip")
        return CLIP(**sizes, dtype=dtype, remat=remat), params["clip"]
    ckpt = read_checkpoint(path, clip_source)
    sd = ckpt["teacher"] if original and "teacher" in ckpt else ckpt["clip"]
    clip_sd = {k.replace(".net.", "."): v for k, v in sd.items()}
    sizes, params = clip_params_from_state_dict(clip_sd, source=str(path))
    return CLIP(**sizes, dtype=dtype, remat=remat), params


def load_actionclip(
    path,
    num_frames: int | None = None,
    frame_stage: str | None = None,
    head: str | None = None,
    conv1d_original: bool | None = None,
    dtype=jnp.float32,
    remat: bool = False,
    clip_source=None,
    return_info: bool = False,
):
    """Loads the ActionCLIP video model from any supported checkpoint.

    The frame stage and the temporal head are read off the checkpoint's keys (an OpenAI CLIP file
    gives `meanP`) or its recipe (ViFi-CLIP, Open-VCLIP); the arguments override them.
    `num_frames` defaults to 8, or to what the checkpoint fixes (joint, transf_cls).
    `clip_source`: the OpenAI CLIP file a ViFi-CLIP checkpoint takes its token embedding from.

    Returns:
      `(model, params)` for `model.apply({'params': params}, video, method=model.encode_video)`;
      with `return_info`, also `{'kind': ..., 'recipe': ...}`, what the file is (`kind`:
      'clip', 'actionclip' or a recipe of `importers.RECIPES`; `recipe`: its name), and what a
      training run that starts from it may keep (FROSTER's files): `projectors` (parameters of
      the model's `projector_v` / `projector_t`) and `teacher` (the `clip` parameters of the
      original CLIP the file carries a copy of).
    """
    if is_converted(path):
        sizes, video, params = _load_converted_actionclip(path, num_frames)
        meta = read_converted_meta(path)
        info = {"kind": meta.get("source_kind", "converted"), "recipe": meta.get("recipe", "")}
    else:
        ckpt = read_checkpoint(path, clip_source)
        inferred = infer_video_config(
            ckpt["clip"], strip_data_parallel(ckpt["fusion"] or {}), str(path)
        )
        t = num_frames or inferred["num_frames"] or 8
        overrides = dict(frame_stage=frame_stage, head=head, conv1d_original=conv1d_original)
        sizes, video, params = actionclip_params_from_checkpoint(ckpt, t, str(path), **overrides)
        info = {"kind": ckpt["kind"], "recipe": ckpt.get("recipe", "")}
        if "projectors" in ckpt:
            info["projectors"] = ckpt["projectors"]
        if "teacher" in ckpt:
            info["teacher"] = clip_params_from_state_dict(ckpt["teacher"], str(path))[1]
    model = build_actionclip(sizes, video, dtype=dtype, remat=remat)
    return (model, params, info) if return_info else (model, params)


def convert(checkpoint, output, overwrite: bool = False, clip_source=None) -> dict:
    """Reads a `.pt` checkpoint and writes it as a converted directory; returns the metadata.

    Both parts of an ActionCLIP checkpoint are kept, with the visual prompt read off its keys; a
    recipe's checkpoint keeps its model (`video`) and the recipe's name (`recipe`).
    """
    ckpt = read_checkpoint(checkpoint, clip_source)
    inferred = infer_video_config(ckpt["clip"], strip_data_parallel(ckpt["fusion"] or {}))
    t = inferred["num_frames"] or 8
    sizes, video, params = actionclip_params_from_checkpoint(ckpt, t, str(checkpoint))
    meta = {"clip": sizes, "video": video, "source": str(checkpoint), "source_kind": ckpt["kind"],
            "recipe": ckpt.get("recipe", "")}  # fmt: skip
    save_converted(output, meta, params, overwrite=overwrite)
    return meta
