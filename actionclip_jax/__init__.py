"""ActionCLIP in JAX/Flax: CLIP-based video action recognition as video-text matching."""

import importlib

_EXPORTS = {
    "CheckpointError": "actionclip_jax.weights",
    "load_actionclip": "actionclip_jax.weights",
    "load_clip": "actionclip_jax.weights",
    "tokenize": "actionclip_jax.tokenizer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # Imported on first use, so that a submodule starts without JAX and Flax: the environment
    # report (`python -m actionclip_jax.collect_env`) is most needed when they fail to import.
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'actionclip_jax' has no attribute {name!r}")
