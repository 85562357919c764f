"""Weight files into numpy state dicts, read safely; a file that is none is named for what it is.

- PyTorch files (`torch.save` zip archives, older pickles, TorchScript archives) need torch and are
  read without running pickled code;
- `.safetensors` files are read with the `safetensors` package's numpy API, without torch.

Everything here is bytes in, `{name: np.ndarray}` out; what the names mean is for `weights`,
`hf_clip` and `open_clip_config`.
"""

import pickle
import zipfile
from typing import Any, Mapping

import numpy as np
from etils import epath

# Written by `actionclip_jax.convert` beside the parameters of a converted directory.
META_FILE = "actionclip_jax.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def require_torch(path):
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise ImportError(
            f"reading the PyTorch file {path} needs torch: `pip install 'actionclip_jax[torch]'` "
            "(or `pip install torch`), or convert it once on a machine with torch: "
            f"`python -m actionclip_jax.convert --checkpoint={path} --output=DIR` and load DIR"
        ) from e
    return torch


# ------------------------------------------------------------------------------- what is this file


def _is_safetensors(head: bytes, size: int) -> bool:
    # An 8-byte little-endian header length, then the JSON header itself.
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n <= size - 8 and head[8:9] == b"{"


def sniff(path) -> str:
    """The kind of a file from its first bytes: `zip`, `pickle`, `safetensors` or a description.

    `zip` (torch.save since 1.6, TorchScript) and `pickle` (older torch.save) may be PyTorch files;
    anything else is described in words for an error message (what it is and what to do).
    """
    path = epath.Path(path)
    size = path.stat().length
    with path.open("rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if _is_safetensors(head, size):
        return "safetensors"
    text = head.lstrip().lower()
    if text.startswith(b"version https://git-lfs"):
        return (
            "a Git LFS pointer file, not the weights themselves: fetch the real file "
            "(`git lfs pull`, or download it again)"
        )
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        return (
            "an HTML/XML page, not weights: the download probably saved an error or login page; "
            "download the file again"
        )
    if head.startswith(b"\x1f\x8b"):
        return "a gzip-compressed file (a .tar.gz or .gz?): unpack it first"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "a tar archive: unpack it first"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (Keras/TensorFlow weights?), not a PyTorch checkpoint"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array file, not a PyTorch checkpoint"
    try:
        head.decode("utf-8")
        return "a text file, not a PyTorch checkpoint"
    except UnicodeDecodeError:
        pass
    return (
        f"not a PyTorch checkpoint: its first bytes ({head[:8].hex(' ')}) are neither a zip "
        "archive (torch.save, TorchScript), a pickle (older torch.save) nor a safetensors header"
    )


# ------------------------------------------------------------------------------------- reading


def is_torchscript(path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def torchscript_activation(path) -> str | None:
    """The MLP activation a TorchScript CLIP archive was traced with, from its recorded code.

    OpenAI's archives record their `QuickGELU` module; an archive of a GELU model records
    `torch.nn.GELU` / `gelu`. None when neither appears.
    """
    quick = gelu = False
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if "/code/" not in name or not name.endswith(".py"):
                continue
            code = z.read(name).decode("utf-8", errors="ignore")
            quick = quick or "QuickGELU" in code
            gelu = gelu or "GELU" in code.replace("QuickGELU", "") or "gelu(" in code
    if quick and not gelu:
        return "quick_gelu"
    if gelu and not quick:
        return "gelu"
    return None


def read_torch_file(path) -> Any:
    """Loads a `.pt` file without executing pickled code.

    TorchScript archives go through `torch.jit.load` (which runs no Python pickle); everything else
    through `torch.load(weights_only=True)`, which refuses files that need arbitrary objects. A file
    that is no PyTorch file at all is named for what it is.
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
    kind = sniff(path)
    if kind == "safetensors":
        raise CheckpointError(f"{path} is a safetensors file: read it with read_safetensors")
    if kind not in ("zip", "pickle"):
        raise CheckpointError(f"cannot read checkpoint {path}: it is {kind}")
    torch = require_torch(path)
    try:
        if is_torchscript(path):
            return {
                k: v for k, v in torch.jit.load(str(path), map_location="cpu").state_dict().items()
            }
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "unsupported global" in str(e).lower():
            raise CheckpointError(
                f"refusing to load {path}: it needs arbitrary pickled Python objects, which could "
                "run code. Re-save it as a plain state dict (torch.save(model.state_dict(), ...)) "
                f"on a machine where you trust it. torch said: {_weights_only_reason(e)}"
            ) from e
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is truncated, corrupt or not a PyTorch "
            f"checkpoint (torch: {_weights_only_reason(e)})"
        ) from e
    except Exception as e:  # torch raises many types on garbage input; none is worth leaking
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is truncated, corrupt or not a "
            f"PyTorch checkpoint ({first})"
        ) from e


def _weights_only_reason(e) -> str:
    # torch's message is a page of advice; the line that names the cause is enough here.
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    for l in lines:
        if "Unsupported" in l:
            return l.split("WeightsUnpickler error:")[-1].strip()
    return lines[0] if lines else type(e).__name__


def read_safetensors(path) -> dict[str, np.ndarray]:
    """All tensors of a `.safetensors` file as float32 numpy arrays (fp16/bf16 widened exactly)."""
    from safetensors import SafetensorError  # pylint: disable=import-outside-toplevel
    from safetensors import safe_open  # pylint: disable=import-outside-toplevel

    path = epath.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            return {k: _widen(f.get_tensor(k)) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        kind = sniff(path) if path.stat().length else "empty (0 bytes)"
        what = "truncated or corrupt" if kind == "safetensors" else kind
        raise CheckpointError(f"cannot read the safetensors file {path}: it is {what} ({e})") from e


def _widen(x: np.ndarray) -> np.ndarray:
    # bf16 arrives as ml_dtypes.bfloat16, which widens to fp32 exactly like fp16.
    return np.asarray(x, np.float32) if x.dtype.kind == "f" or "bfloat16" in str(x.dtype) else x


def to_numpy(value) -> np.ndarray:
    # `.float()` widens fp16/bf16 exactly; numpy has no bf16 of its own.
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def as_state_dict(obj, path, what) -> dict[str, np.ndarray]:
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        raise CheckpointError(f"{path}: {what} is not a state dict (a mapping of names to tensors)")
    out = {}
    for k, v in obj.items():
        if not hasattr(v, "shape"):
            raise CheckpointError(
                f"{path}: {what} entry {k!r} is a {type(v).__name__}, not a tensor"
            )
        out[k] = to_numpy(v)
    return out
