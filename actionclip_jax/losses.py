"""ActionCLIP's symmetric KL loss between video–text logits and a soft label-equality target, the
unimodal baseline's cross-entropy, and the soft-target cross-entropy over all class texts
(ViFi-CLIP, Open-VCLIP) with label smoothing."""

import jax
import jax.numpy as jnp


def label_target(labels, sharpness: float = 10.0):
    """softmax(sharpness · [labels_i == labels_j]) per row: every same-class pair is a positive."""
    gt = (labels[:, None] == labels[None, :]).astype(jnp.float32)  # [B, B]
    return jax.nn.softmax(sharpness * gt, axis=1)


def kl_rows(logits, target):
    """Batch-mean KL(target ‖ softmax(logits)) over rows, in fp32."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=1)
    kl = jnp.sum(jax.scipy.special.xlogy(target, target) - target * logp, axis=1)
    return kl.mean()


def kl_loss(logits_per_video, labels, logits_per_text=None):
    """(KL(q ‖ p_video) + KL(q ‖ p_text)) / 2 with q = `label_target(labels)`.

    Args:
      logits_per_video: `[B, B]`, scale · v̂ t̂ᵀ, video i against the text of sample j.
      labels: `[B]` int class ids; equal ids are positives of each other.
      logits_per_text: `[B, B]`; the transpose of `logits_per_video` when omitted.
    """
    q = label_target(labels)
    if logits_per_text is None:
        logits_per_text = logits_per_video.T
    return 0.5 * (kl_rows(logits_per_video, q) + kl_rows(logits_per_text, q))


def cross_entropy_loss(logits, labels):
    """Batch-mean softmax cross-entropy of `[B, C]` logits against `[B]` int labels, in fp32."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1).mean()


def smooth_labels(labels, num_classes: int, smoothing: float = 0.0):
    """One-hot targets `[B, C]` with label smoothing: `s/C` off the label, `1 - s + s/C` on it
    (timm's and X-CLIP's convention, which ViFi-CLIP uses with s = 0.1)."""
    off = smoothing / num_classes
    return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32) * (1.0 - smoothing) + off


def soft_cross_entropy(logits, targets):
    """Batch-mean cross-entropy of `[B, C]` logits against soft targets `[B, C]`, in fp32."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.sum(targets * logp, axis=-1).mean()
