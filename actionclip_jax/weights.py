"""Reading CLIP and ActionCLIP checkpoints into Flax parameters.

Sources:
- OpenAI's released `.pt` files (TorchScript archives, mixed fp16/fp32 tensors);
- plain PyTorch state-dict `.pt` files;
- ActionCLIP training checkpoints `{'epoch', 'model_state_dict', 'fusion_model_state_dict', ...}`;
- directories written by `python -m actionclip_jax.convert` (orbax + a JSON of the model's sizes),
  which load without PyTorch.

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


def read_checkpoint(path) -> dict[str, Any]:
    """Reads any supported `.pt` file.

    Returns:
      `{'clip': state dict, 'fusion': state dict or None, 'kind': 'clip' | 'actionclip'}` with numpy
      float32 tensors and the keys as stored.
    """
    obj = read_torch_file(path)
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

    The rules are generic (dots → path, `resblocks.{i}` → `resblocks_{i}`, Linear weights transposed,
    LayerNorm weight → scale), so CLIP's and ActionCLIP's temporal-transformer keys share them.
    """
    parts = key.split(".")
    parts = [p for p in parts if p != "net"]  # TSM wrapper (`resblocks.{i}.net.X`) adds no params
    path = []
    i = 0
    while i < len(parts):
        if parts[i] == "resblocks" and i + 1 < len(parts) and parts[i + 1].isdigit():
            path.append(f"resblocks_{parts[i + 1]}")
            i += 2
            continue
        path.append(parts[i])
        i += 1
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


def load_clip(path, dtype=jnp.float32, remat: bool = False):
    """Loads CLIP from an OpenAI `.pt`, a state dict, an ActionCLIP checkpoint or a converted dir.

    Returns:
      `(model, params)`: a `CLIP` module (compute `dtype`, fp32 parameters) and its parameters, for
      `model.apply({'params': params}, images, method=model.encode_image)`.
    """
    if is_converted(path):
        meta = read_converted_meta(path)
        sizes = meta["clip"]
        model = CLIP(**sizes, dtype=dtype, remat=remat)
        expected = {"clip": abstract_params(model, *clip_dummy_inputs(sizes))}
        return model, restore_converted_params(path, expected)["clip"]
    ckpt = read_checkpoint(path)
    sizes, params = clip_params_from_state_dict(ckpt["clip"], source=str(path))
    return CLIP(**sizes, dtype=dtype, remat=remat), params


def convert(checkpoint, output, overwrite: bool = False) -> dict:
    """Reads a `.pt` checkpoint and writes it as a converted directory; returns the metadata."""
    ckpt = read_checkpoint(checkpoint)
    sizes, params = clip_params_from_state_dict(ckpt["clip"], source=str(checkpoint))
    meta = {"clip": sizes, "source": str(checkpoint), "source_kind": ckpt["kind"]}
    save_converted(output, meta, {"clip": params}, overwrite=overwrite)
    return meta
