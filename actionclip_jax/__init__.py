"""ActionCLIP in JAX/Flax: CLIP-based video action recognition as video-text matching."""
