"""Scoring clips against classes: per-template logits, then one score per class.

ActionCLIP's evaluation encodes every class under every template once per pass; each view of a
video gets `EVAL_SCALE` (100, not the learned scale) × cosine similarity per template, a softmax
over classes per template, the mean over templates and then over views (`view_scores`,
`reduce="softmax_mean"`). A 1-of-N classifier enters with one "template" (K = 1), and so does a
prompt-ensemble classifier (`ensemble_classifier`: Open-VCLIP's and FROSTER's text side).

The reductions over views (`VIEW_REDUCTIONS`, config `eval.view_reduce`):
- `softmax_mean` (ActionCLIP): softmax over classes per template, mean over templates and views;
- `softmax_sum` (ViFi-CLIP): the same, summed over views. It ranks classes exactly as
  `softmax_mean` (the two differ by the factor V); kept so that a result records the original's
  reduction, and its scores are the original's;
- `logit_sum` (Open-VCLIP, FROSTER): the raw logits, mean over templates, summed over views, no
  softmax: a confident view outweighs the others.
"""

import jax
import jax.numpy as jnp
import numpy as np

from actionclip_jax.models.clip import l2_normalize

EVAL_SCALE = 100.0

# How the per-view, per-template logits of a video become one score per class.
VIEW_REDUCTIONS = ("softmax_mean", "softmax_sum", "logit_sum")


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


def ensemble_classifier(text_features):
    """The prompt-ensemble classifier: per-template features `[K, C, E]` → `[C, E]`.

    Each template's class features are L2-normalised, averaged over the templates and normalised
    again (Open-VCLIP's `text_prompt` classifier). Differentiable: with features computed under a
    gradient it trains the text tower (FROSTER); with frozen weights it is computed once.
    """
    mean = l2_normalize(text_features.astype(jnp.float32)).mean(axis=0)  # [C, E]
    return l2_normalize(mean)


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
      reduce: one of `VIEW_REDUCTIONS` (the module docstring); `softmax_mean` is ActionCLIP's
        (probabilities averaged over templates, then over views).
      class_mask: optional bool `[C]`: score only these classes (the others rank last: 0 for the
        softmax reductions, -inf for `logit_sum`).
    """
    logits = logits.astype(jnp.float32)
    if reduce == "softmax_mean":
        return probs_from_logits(logits, class_mask).mean(axis=1)
    if reduce == "softmax_sum":
        return probs_from_logits(logits, class_mask).sum(axis=1)
    if reduce == "logit_sum":
        scores = logits.mean(axis=2).sum(axis=1)  # [B, C]
        return scores if class_mask is None else jnp.where(class_mask, scores, -jnp.inf)
    raise ValueError(f"reduce must be one of {VIEW_REDUCTIONS}, got {reduce!r}")
