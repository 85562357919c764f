"""An independent PyTorch transcription of ViFi-CLIP's and Open-VCLIP's forward passes and of
Open-VCLIP's interpolated weight optimisation (IWO), from the team's facts sheet (OPEN_VOCAB.md,
sections 1.1-1.3 and 2.1-2.3), for the parity tests of the JAX port.

* Open-VCLIP's vision block attention (`expand_temporal_view`): q, k, v from the block's own
  `in_proj` per frame; per head, the keys and values of frame t are those of frames t+1, t-1 and
  t concatenated along the tokens, all-zero (not masked) past either end; softmax over the 3L
  keys; `out_proj`. Written here frame by frame, in the sequence-first layout of OpenAI's code.
* Open-VCLIP's pooling: the mean over frames of the per-frame logits of normalised frame
  features; its classifier: each template encoded and normalised, averaged, renormalised.
* ViFi-CLIP: plain CLIP per frame, the mean of the frame embeddings normalised; its text side
  runs the stored prompt embeddings (`complete_text_embeddings`) through the text transformer
  instead of `token_embedding`; pixels normalised with ImageNet's mean and std on 0-255.
* IWO: the original's three passes: the loss at α·θ₀ + (1−α)·θ × 0.5 backpropagated in a copy
  holding the interpolated weights, the plain loss backpropagated in θ, the two gradients added.

CLIP itself is OpenAI's `clip/model.py` (`reference.reference_clip_module()`). Nothing here
imports the JAX package.
"""

from __future__ import annotations

import copy
import types

import numpy as np
import torch
import torch.nn.functional as F

import reference

IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

OPENVCLIP_PREFIXES = ("a photo of", "a video of", "a example of", "a demonstration of")
OPENVCLIP_SUFFIXES = ("{}", "a person {}", "a person using {}", "a person doing {}",
                      "a person during {}", "a person performing {}", "a person practicing {}")
OPENVCLIP_TEMPLATES = [f"{p} {s}." for p in OPENVCLIP_PREFIXES for s in OPENVCLIP_SUFFIXES]
VIFICLIP_TEMPLATE = "a photo of a {}."


class ConfigNode(dict):
    """Stands in for the yacs `CfgNode` that ViFi-CLIP pickles beside its weights."""


# ------------------------------------------------------------------------------------------------
# Open-VCLIP: neighbour-frame attention
# ------------------------------------------------------------------------------------------------


def expand_temporal_attention(x: torch.Tensor, attn: torch.nn.MultiheadAttention, T: int):
    """`attn`'s weights applied with Open-VCLIP's expanded keys and values.

    Args:
      x: `[L, N, W]` sequence-first tokens of N = B·T frames, frame t of video b at b·T + t.
    """
    L, N, W = x.shape
    H = attn.num_heads
    D = W // H
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)  # [L, N, W]
    q = q * D**-0.5

    def heads(t):  # [L, N, W] -> [N, H, L, D]
        return t.reshape(L, N, H, D).permute(1, 2, 0, 3)

    q, k, v = heads(q), heads(k), heads(v)
    zeros = torch.zeros_like(k[0])  # [H, L, D]
    out = torch.empty_like(q)
    for n in range(N):
        t = n % T
        nxt = n + 1 if t + 1 < T else None
        prv = n - 1 if t > 0 else None
        keys = torch.cat([k[nxt] if nxt is not None else zeros,
                          k[prv] if prv is not None else zeros, k[n]], dim=1)  # [H, 3L, D]
        vals = torch.cat([v[nxt] if nxt is not None else zeros,
                          v[prv] if prv is not None else zeros, v[n]], dim=1)
        weights = torch.softmax(q[n] @ keys.transpose(1, 2), dim=-1)  # [H, L, 3L]
        out[n] = weights @ vals
    out = out.permute(2, 0, 1, 3).reshape(L, N, W)
    return F.linear(out, attn.out_proj.weight, attn.out_proj.bias)


def make_temporal_visual_(clip_model, T: int):
    """Turns every vision block's attention into Open-VCLIP's (in place); returns the model."""
    for block in clip_model.visual.transformer.resblocks:
        def attention(self, x, _T=T):
            return expand_temporal_attention(x, self.attn, _T)

        block.attention = types.MethodType(attention, block)
    return clip_model


def frame_features(clip_model, video_nthwc) -> torch.Tensor:
    """`[B, T, E]` per-frame CLIP embeddings of normalised NHWC frames `[B, T, H, W, 3]`."""
    b, t = video_nthwc.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(video_nthwc.reshape(b * t, *video_nthwc.shape[2:])
                                              .transpose(0, 3, 1, 2)))  # fmt: skip
    return clip_model.encode_image(x).float().reshape(b, t, -1)


def encode_templates(clip_model, class_names, templates, context_length=77) -> torch.Tensor:
    """`[K, C, E]` normalised text features of every class under every template."""
    feats = []
    for tmpl in templates:
        tokens = reference_tokens([tmpl.format(c) for c in class_names], context_length)
        feats.append(F.normalize(clip_model.encode_text(tokens).float(), dim=-1))
    return torch.stack(feats)


def ensemble_classifier(clip_model, class_names, templates) -> torch.Tensor:
    """Open-VCLIP's `[C, E]` classifier: per template normalised, averaged, renormalised."""
    return F.normalize(encode_templates(clip_model, class_names, templates).mean(0), dim=-1)


def openvclip_logits(clip_model, video_nthwc, classifier) -> torch.Tensor:
    """The mean over frames of per-frame logits, `[B, C]`."""
    f = F.normalize(frame_features(clip_model, video_nthwc), dim=-1)  # [B, T, E]
    per_frame = clip_model.logit_scale.exp() * f @ classifier.T  # [B, T, C]
    return per_frame.mean(1)


def openvclip_checkpoint(clip_model) -> dict:
    """The released SWA file's layout: `{'model_state': {'model.<OpenAI key>': tensor}}`."""
    return {"model_state": {f"model.{k}": v.clone() for k, v in clip_model.state_dict().items()}}


# ------------------------------------------------------------------------------------------------
# ViFi-CLIP
# ------------------------------------------------------------------------------------------------


def reference_tokens(texts, context_length=77) -> torch.Tensor:
    tok = reference.reference_tokenizer()
    sot, eot = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]
    out = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [sot] + tok.encode(text) + [eot]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def imagenet_normalise(frames_uint8) -> np.ndarray:
    x = frames_uint8.astype(np.float32)
    return ((x - np.array(IMAGENET_MEAN_255, np.float32)) / np.array(IMAGENET_STD_255, np.float32))


def clip_normalise(frames_uint8) -> np.ndarray:
    x = frames_uint8.astype(np.float32) / 255.0
    return (x - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)


def vificlip_text_features(clip_model, prompt_embeddings, tokens) -> torch.Tensor:
    """ViFi-CLIP's `TextEncoder`: stored prompt embeddings `[C, 77, Wt]` → `[C, E]`."""
    x = prompt_embeddings + clip_model.positional_embedding
    x = clip_model.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
    x = clip_model.ln_final(x)
    return x[torch.arange(x.shape[0]), tokens.argmax(-1)] @ clip_model.text_projection


def vificlip_logits(clip_model, video_nthwc, prompt_embeddings, tokens):
    """`(video features [B, E] normalised, logits [B, C])` of ViFi-CLIP's forward."""
    v = F.normalize(frame_features(clip_model, video_nthwc).mean(1), dim=-1)
    t = F.normalize(vificlip_text_features(clip_model, prompt_embeddings, tokens), dim=-1)
    return v, clip_model.logit_scale.exp() * v @ t.T


def vificlip_checkpoint(clip_model, class_names, with_config=True) -> dict:
    """ViFi-CLIP's `epoch_saving` layout: `module.` + image_encoder/text_encoder/logit_scale and
    the prompt buffer, no token embedding; optimizer state and the (pickled) config beside."""
    sd = clip_model.state_dict()
    model = {}
    for k, v in sd.items():
        if k.startswith("visual."):
            model["module.image_encoder." + k[len("visual."):]] = v.clone()
        elif k == "logit_scale":
            model["module.logit_scale"] = v.clone()
        elif k == "token_embedding.weight":
            continue
        else:
            model["module.text_encoder." + k] = v.clone()
    tokens = reference_tokens([VIFICLIP_TEMPLATE.format(c) for c in class_names])
    with torch.no_grad():
        model["module.prompt_learner.complete_text_embeddings"] = clip_model.token_embedding(tokens)
    out = {"model": model, "optimizer": {"state": {}, "param_groups": [{"lr": 8e-6}]},
           "lr_scheduler": {"last_epoch": 3}, "max_accuracy": 0.5, "epoch": 3}
    if with_config:
        out["config"] = ConfigNode(MODEL=ConfigNode(ARCH="ViT-B/16"))
    return out


# ------------------------------------------------------------------------------------------------
# Open-VCLIP's IWO gradient
# ------------------------------------------------------------------------------------------------


def iwo_gradients(clip_model, clip_zero, video_nthwc, labels, classifier, alpha, ratio=0.5):
    """The gradients Open-VCLIP's IWO step applies to θ, by name (`[*shape]` numpy).

    `clip_model` holds θ, `clip_zero` θ₀; `classifier` the frozen `[C, E]` text classifier.
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    theta = {k: v.detach().clone() for k, v in clip_model.named_parameters()}
    theta0 = dict(clip_zero.named_parameters())
    # Pass 1: the interpolated weights in a copy, loss × ratio, its gradients kept.
    moved = copy.deepcopy(clip_model)
    with torch.no_grad():
        for k, p in moved.named_parameters():
            p.copy_(alpha * theta0[k] + (1 - alpha) * theta[k])
    moved.zero_grad()
    (F.cross_entropy(openvclip_logits(moved, video_nthwc, classifier), labels) * ratio).backward()
    saved = {k: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
             for k, p in moved.named_parameters()}  # fmt: skip
    # Pass 2: θ restored (never changed here), the plain loss, the saved gradients added.
    clip_model.zero_grad()
    F.cross_entropy(openvclip_logits(clip_model, video_nthwc, classifier), labels).backward()
    grads = {}
    for k, p in clip_model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        grads[k] = (g + saved[k]).detach().numpy()
    return grads


def cross_entropy_value(logits, labels) -> float:
    return float(F.cross_entropy(logits, torch.as_tensor(labels, dtype=torch.long)))


def rel(a, b) -> float:
    return reference.rel_err(a, b)

