"""Reference implementations (PyTorch / OpenAI CLIP) that the tests compare against.

Modules of the installed ``openai-clip`` package are loaded by file path, never with
``import clip``: the package ``__init__`` imports torchvision, which may be unusable here.
"""

import functools
import importlib.util
import copy
import os

import numpy as np
import torch


def load_clip_file(filename: str, module_name: str):
    """Imports `clip/<filename>` of the openai-clip package without running `clip/__init__.py`.

    ``find_spec`` on the top-level package only locates it.
    """
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("openai-clip is not installed (pip install --no-deps openai-clip)")
    path = os.path.join(list(spec.submodule_search_locations)[0], filename)
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@functools.cache
def reference_tokenizer():
    """Returns OpenAI CLIP's ``SimpleTokenizer``, loaded from ``clip/simple_tokenizer.py``."""
    return load_clip_file(
        "simple_tokenizer.py", "_reference_clip_simple_tokenizer"
    ).SimpleTokenizer()


@functools.cache
def reference_clip_module():
    """OpenAI's ``clip/model.py``."""
    return load_clip_file("model.py", "_reference_clip_model")


# Small, deliberately non-standard sizes: patch 14, 3 layers, 112², text width 192 (3 heads).
SMALL = dict(
    embed_dim=96,
    image_resolution=112,
    vision_layers=3,
    vision_width=128,
    vision_patch_size=14,
    context_length=77,
    vocab_size=49408,
    transformer_width=192,
    transformer_heads=3,
    transformer_layers=2,
)
VIT_B32 = dict(
    embed_dim=512,
    image_resolution=224,
    vision_layers=12,
    vision_width=768,
    vision_patch_size=32,
    context_length=77,
    vocab_size=49408,
    transformer_width=512,
    transformer_heads=8,
    transformer_layers=12,
)


def randomize_(module: torch.nn.Module, seed: int, scale: float = 1.0):
    """Gives every tensor non-trivial values.

    CLIP's init leaves biases at zero and LayerNorms at identity, which would hide a bias or a
    LayerNorm the import forgot; here every tensor is perturbed around a sensible scale.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("logit_scale"):
                p.copy_(torch.tensor(np.log(100.0) - 0.3))
            elif p.ndim == 1 and ("ln" in name or "norm" in name) and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * noise)
            elif p.ndim == 1:  # biases, class embedding
                p.copy_(0.1 * scale * noise)
            else:
                fan_in = p.shape[1] if p.ndim == 2 else int(np.prod(p.shape[1:]))
                if "embedding" in name:
                    fan_in = p.shape[-1]
                p.copy_(noise * scale * fan_in**-0.5)
    return module


def make_reference_clip(sizes=SMALL, seed: int = 0):
    """A float32 reference CLIP in eval mode with random, non-trivial weights."""
    ref = reference_clip_module()
    torch.manual_seed(seed)
    model = ref.CLIP(**sizes)
    return randomize_(model, seed).eval()


def fp16_state_dict(model) -> dict:
    """The state dict as OpenAI ships it: fp16 convs, linears, attention and projections."""
    ref = reference_clip_module()

    half = copy.deepcopy(model)
    ref.convert_weights(half)
    return {k: v.clone() for k, v in half.state_dict().items()}


def save_torchscript(model, path, sizes):
    """Writes a TorchScript archive of `model` like OpenAI's released files (fp16 weights inside)."""
    ref = reference_clip_module()

    traced_model = copy.deepcopy(model)
    r = sizes["image_resolution"]
    images = torch.zeros(1, 3, r, r)
    tokens = torch.zeros(1, sizes["context_length"], dtype=torch.long)
    traced = torch.jit.trace(traced_model, (images, tokens), check_trace=False)
    # OpenAI's archives hold fp16 conv/linear/attention/projection weights; mirror that split.
    ref.convert_weights(traced_model)
    with torch.no_grad():
        sd = traced_model.state_dict()
        for name, p in traced.named_parameters():
            p.data = sd[name].clone()
    torch.jit.save(traced, str(path))


def reference_image_features(model, images_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
        return model.encode_image(x).float().numpy()


def reference_text_features(model, tokens: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.encode_text(torch.from_numpy(tokens.astype(np.int64))).float().numpy()


def rel_err(a, b) -> float:
    """max |a − b| / max |b|: the parity measure of the issue."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
