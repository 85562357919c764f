"""Scoring clips against classes: per-template logits, then one score per class.

ActionCLIP's evaluation encodes every class under every template once per pass; each view of a
video gets `EVAL_SCALE` (100, not the learned scale) × cosine similarity per template, a softmax
over classes per template, the mean over templates and then over views (`view_scores`,
`reduce="softmax_mean"`). A 1-of-N classifier enters with one "template" (K = 1).
"""

import jax
import jax.numpy as jnp
import numpy as np

from actionclip_jax.models.clip import l2_normalize

EVAL_SCALE = 100.0

# How the per-view, per-template logits of a video become one score per class.
VIEW_REDUCTIONS = ("softmax_mean",)


def text_encoder(model):
    """A jitted `(params, tokens [N, L]) -> L2-normalised text features [N, E]` float32.

    Make it once per model and reuse it: every call of `encode_class_texts` with it then runs one
    compiled program per chunk shape.
    """

    @jax.jit
    def encode(params, tokens):
        x = model.apply({"params": params}, tokens, method=model.encode_text)
        return l2_normalize(x.astype(jnp.float32))

    return encode


def encode_class_texts(encode, params, table, batch_size: int = 256):
    """Text features of a `[K, C, L]` prompt table → `[K, C, E]` float32, L2-normalised.

    Args:
      encode: from `text_encoder(model)`.
      params: the model's parameters.
      table: tokens from `prompts.prompt_tokens`.
      batch_size: prompts per call (fixed, so one compilation serves every chunk).
    """
    k, c, l = table.shape
    flat = np.asarray(table).reshape(k * c, l)
    n = flat.shape[0]
    pad = -n % batch_size
    flat = np.concatenate([flat, np.zeros((pad, l), flat.dtype)]) if pad else flat
    feats = [encode(params, flat[i : i + batch_size]) for i in range(0, len(flat), batch_size)]
    return jnp.concatenate(feats)[:n].reshape(k, c, -1)


def template_logits(video_features, text_features, scale: float = EVAL_SCALE):
    """Per-template logits `[..., K, C]`: `scale` × cosine similarity of video and class texts.

    Args:
      video_features: `[..., E]` L2-normalised.
      text_features: `[K, C, E]` from `encode_class_texts`.
    """
    return scale * jnp.einsum("...e,kce->...kc", video_features.astype(jnp.float32), text_features)


def probs_from_logits(logits, class_mask=None):
    """`[..., K, C]` logits → `[..., C]`: softmax over classes per template, template mean.

    With a bool `class_mask` `[C]` the softmax runs over those classes only (the others get 0).
    Renormalising each template's softmax over a subset is not the same as masking the averaged
    probabilities: the template mean of subset softmaxes can rank classes differently.
    """
    if class_mask is not None:
        logits = jnp.where(class_mask, logits, -jnp.inf)
    return jax.nn.softmax(logits, axis=-1).mean(axis=-2)


def view_scores(logits, reduce: str = "softmax_mean", class_mask=None):
    """One score per class from the logits of every view and template, `[B, V, K, C]` → `[B, C]`.

    Args:
      logits: per-view, per-template logits.
      reduce: one of `VIEW_REDUCTIONS`; `softmax_mean` is ActionCLIP's (probabilities averaged
        over templates, then over views).
      class_mask: optional bool `[C]`: score only these classes (the others rank last).
    """
    if reduce == "softmax_mean":
        return probs_from_logits(logits.astype(jnp.float32), class_mask).mean(axis=1)
    raise ValueError(f"reduce must be one of {VIEW_REDUCTIONS}, got {reduce!r}")
