"""An independent PyTorch transcription of FROSTER's training-branch forward pass and loss, from the
team's facts sheet (OPEN_VOCAB.md, sections 3.1-3.3), for the parity tests of the JAX port.

* The student is Open-VCLIP's model (`reference_openvocab`: neighbour-frame attention in every
  vision block, per-frame logits averaged), its text tower trained.
* Class texts: for each of Open-VCLIP's 28 templates `template.format(Name) + " " + string`, for
  the bare one the "Name: description" string alone (Name: the string up to its first ':').
  Training uses two prompt sets, one drawn template of the 28 and the bare one; each set is
  encoded, normalised, averaged with the other and renormalised, with gradients.
* The teacher: plain CLIP (no temporal attention) at the original weights, no gradient: its
  normalised per-frame image features and its classifier of the same two prompt sets.
* The residual projectors: Linear(E, E, no bias) → GELU (erf) → Linear(E, E, no bias), first layer
  `kaiming_normal_`, second zero-initialised; `f + 0.1 · projector(f)` on the student's
  normalised per-frame features `[B·T, E]` and on its classifier rows `[C, E]`.
* The loss: cross-entropy of the averaged per-frame logits over all classes + 2.0 × the sum of
  the video and text distances, `1 − mean cos` (the original since 2024-11) or the mean L2
  distance, not squared (before).
* The checkpoint layout: `{'model_state': {'model.<OpenAI key>', 'projector_{v,t}.{0,2}.weight',
  'raw_model.<OpenAI key>' (per-epoch files)}}`.

Nothing here imports the JAX package.
"""

from __future__ import annotations

import reference_openvocab as ref_ov
import torch
import torch.nn.functional as F
from torch import nn

ALPHA = 0.1
BARE = "{}"
FROSTER_TEMPLATES = [*ref_ov.OPENVCLIP_TEMPLATES, BARE]


def make_projector(embed_dim: int, seed: int) -> nn.Sequential:
    """`projector_v` / `projector_t` as FROSTER builds them (the seed makes the draw repeatable)."""
    torch.manual_seed(seed)
    proj = nn.Sequential(
        nn.Linear(embed_dim, embed_dim, bias=False),
        nn.GELU(),
        nn.Linear(embed_dim, embed_dim, bias=False),
    )
    nn.init.zeros_(proj[2].weight)
    nn.init.kaiming_normal_(proj[0].weight)
    return proj


def class_texts(strings, template: str) -> list[str]:
    """One prompt set: every class's text under `template` ("Name: description" `strings`)."""
    if template == BARE:
        return [template.format(s) for s in strings]
    return [template.format(s.split(":")[0]) + " " + s for s in strings]


def classifier(clip_model, strings, templates) -> torch.Tensor:
    """`[C, E]`: each prompt set encoded and normalised, averaged, renormalised."""
    feats = []
    for tmpl in templates:
        tokens = ref_ov.reference_tokens(class_texts(strings, tmpl))
        feats.append(F.normalize(clip_model.encode_text(tokens).float(), dim=-1))
    return F.normalize(torch.stack(feats).mean(0), dim=-1)


def training_forward(student, teacher, proj_v, proj_t, video_nthwc, strings, template: int):
    """The training branch: `(pred [B, C], student video [B·T, E], student text [C, E],
    teacher video [B·T, E], teacher text [C, E])`, the student's features projected.

    `template`: the index (into Open-VCLIP's 28) drawn for this step."""
    templates = [ref_ov.OPENVCLIP_TEMPLATES[template], BARE]
    b, t = video_nthwc.shape[:2]
    frames = ref_ov.frame_features(student, video_nthwc).reshape(b * t, -1)  # [B·T, E]
    frames = frames / frames.norm(dim=-1, keepdim=True)
    w = classifier(student, strings, templates)  # [C, E], with gradients
    pred = (student.logit_scale.exp() * frames @ w.T).reshape(b, t, -1).mean(1)
    with torch.no_grad():
        raw = ref_ov.frame_features(teacher, video_nthwc).reshape(b * t, -1)
        raw = raw / raw.norm(dim=-1, keepdim=True)
        w_raw = classifier(teacher, strings, templates)
    video_s = frames + ALPHA * proj_v(frames)
    text_s = w + ALPHA * proj_t(w)
    return pred, video_s, text_s, raw, w_raw


def loss(outputs, labels, form: str = "cosine", ratio: float = 2.0):
    """`(total, cross-entropy, video distance, text distance)`."""
    pred, video_s, text_s, raw, w_raw = outputs
    ce = F.cross_entropy(pred, torch.as_tensor(labels, dtype=torch.long))
    if form == "cosine":
        d_video = 1 - F.cosine_similarity(video_s, raw, dim=-1).mean()
        d_text = 1 - F.cosine_similarity(text_s, w_raw, dim=-1).mean()
    else:
        d_video = (video_s - raw).norm(p=2, dim=-1).mean()
        d_text = (text_s - w_raw).norm(p=2, dim=-1).mean()
    return ce + ratio * (d_video + d_text), ce, d_video, d_text


def checkpoint(student, proj_v, proj_t, teacher=None) -> dict:
    """FROSTER's layout: the SWA file (`teacher=None`) or a per-epoch file's `model_state`."""
    state = {f"model.{k}": v.detach().clone() for k, v in student.state_dict().items()}
    for name, proj in (("projector_v", proj_v), ("projector_t", proj_t)):
        for k, v in proj.state_dict().items():
            state[f"{name}.{k}"] = v.detach().clone()
    if teacher is not None:
        state.update(
            {f"raw_model.{k}": v.detach().clone() for k, v in teacher.state_dict().items()}
        )
    return {"model_state": state}
