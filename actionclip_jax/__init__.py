"""ActionCLIP in JAX/Flax: CLIP-based video action recognition as video-text matching."""

from actionclip_jax.tokenizer import tokenize
from actionclip_jax.weights import CheckpointError
from actionclip_jax.weights import load_actionclip, load_clip

__all__ = ["CheckpointError", "load_actionclip", "load_clip", "tokenize"]
