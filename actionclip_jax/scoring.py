"""Scoring videos against class texts as ActionCLIP's evaluation does.

Every class is encoded under every template once per evaluation; each video view gets a softmax
over classes per template with the fixed scale 100 (not the learned one); probabilities are
averaged over templates and then over views.
"""

import jax
import jax.numpy as jnp
import numpy as np

from actionclip_jax.models.clip import l2_normalize

EVAL_SCALE = 100.0


def encode_class_texts(model, params, table, batch_size: int = 256):
    """L2-normalised text features of a `[K, C, L]` prompt table → `[K, C, E]` float32.

    Args:
      model: a `CLIP` or `ActionCLIP` module (anything with `encode_text`).
      params: its parameters.
      table: tokens from `prompts.prompt_tokens`.
      batch_size: prompts per call (fixed, so one compilation serves every chunk).
    """
    k, c, l = table.shape
    flat = np.asarray(table).reshape(k * c, l)
    n = flat.shape[0]
    pad = -n % batch_size
    flat = np.concatenate([flat, np.zeros((pad, l), flat.dtype)]) if pad else flat
    encode = _text_encoder(model)
    feats = [encode(params, flat[i : i + batch_size]) for i in range(0, len(flat), batch_size)]
    return jnp.concatenate(feats)[:n].reshape(k, c, -1)


def _text_encoder(model):
    @jax.jit
    def encode(params, tokens):
        x = model.apply({"params": params}, tokens, method=model.encode_text)
        return l2_normalize(x.astype(jnp.float32))

    return encode


def template_logits(video_features, text_features, scale: float = EVAL_SCALE):
    """Per-template logits `[..., K, C]`: `scale` × cosine similarity of video and class texts.

    Args:
      video_features: `[..., E]` L2-normalised (e.g. `[B, E]` or `[B, V, E]` for V views).
      text_features: `[K, C, E]` from `encode_class_texts`.
    """
    return scale * jnp.einsum("...e,kce->...kc", video_features.astype(jnp.float32), text_features)


def probs_from_logits(logits):
    """`[..., K, C]` logits → `[..., C]`: softmax over classes per template, template mean.

    A classifier's logits enter with K = 1 (plain softmax).
    """
    return jax.nn.softmax(logits, axis=-1).mean(axis=-2)


def class_probs(video_features, text_features, scale: float = EVAL_SCALE):
    """Class probabilities `[..., C]`: softmax over classes per template, mean over templates.

    Args:
      video_features: `[..., E]` L2-normalised (e.g. `[B, E]` or `[B, V, E]` for V views).
      text_features: `[K, C, E]` from `encode_class_texts`.
    """
    return probs_from_logits(template_logits(video_features, text_features, scale))


def view_probs(video_features, text_features, scale: float = EVAL_SCALE):
    """`[B, V, E]` features of V views → `[B, C]`: per-view template-averaged probs, view mean."""
    return class_probs(video_features, text_features, scale).mean(axis=1)
