"""The ActionCLIP video–text model: CLIP + a visual prompt, scored against prompted label text.

The visual prompt is two independent choices:
- the frame stage, inside the ViT: `none`, `shift` (temporal token shift in every block) or
  `joint` (time embedding + one space-time sequence per video);
- the temporal head over frame features: `meanP`, `conv1d`, `lstm`, `transf`, `transf_cls`.
The original pairs `shift` and `joint` with `meanP`; any pair works here.
"""

from typing import Any, Mapping

import flax.linen as nn
import jax.numpy as jnp

from actionclip_jax.models.clip import CLIP, FRAME_STAGES, l2_normalize
from actionclip_jax.models.heads import HEADS, make_head

Dtype = Any


class ActionCLIP(nn.Module):
    """Video `[B, T, H, W, 3]` (CLIP-normalised) and tokens `[N, L]` → matched features.

    Parameters: `clip` (the CLIP tree, as `CLIP`'s) and `fusion` (the temporal head; empty for
    `meanP`).
    """

    clip_sizes: Mapping[str, int]
    num_frames: int
    frame_stage: str = "none"
    head: str = "transf"
    position_rows: int = 77  # rows of the transf head's frame-position table
    head_layers: int = 6  # blocks of the transf / transf_cls heads (the original: 6)
    conv1d_original: bool = False
    remat: bool = False
    dtype: Dtype = jnp.float32

    def setup(self):
        if self.frame_stage not in FRAME_STAGES:
            raise ValueError(
                f"frame_stage must be one of {FRAME_STAGES}, got {self.frame_stage!r}"
            )
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        self.clip = CLIP(
            **self.clip_sizes,
            frame_stage=self.frame_stage,
            num_frames=self.num_frames,
            remat=self.remat,
            dtype=self.dtype,
        )
        # The original sizes its temporal transformer from the text tower: heads = width / 64.
        heads = self.clip_sizes["transformer_width"] // 64
        self.fusion = make_head(
            self.head,
            heads=heads,
            # joint already pools time inside the ViT: the head sees one step.
            num_frames=1 if self.frame_stage == "joint" else self.num_frames,
            position_rows=self.position_rows,
            conv1d_original=self.conv1d_original,
            layers=self.head_layers,
        )

    def encode_frames(self, video):  # [B, T, H, W, 3] → [B, T', E]
        b, t = video.shape[:2]
        if t != self.num_frames:
            raise ValueError(f"the model was built for {self.num_frames} frames, got {t}")
        x = self.clip.encode_image(video.reshape(b * t, *video.shape[2:]))
        return x.reshape(b, -1, x.shape[-1])  # T' = 1 for joint: one feature per video

    def encode_video(self, video, train: bool = False):  # [B, T, H, W, 3] → [B, E]
        # Frame features are not normalised before the head, as in the original.
        return self.fusion(self.encode_frames(video).astype(jnp.float32), train=train)

    def encode_text(self, tokens):  # [N, L] → [N, E]
        return self.clip.encode_text(tokens)

    def __call__(self, video, tokens, train: bool = False):
        """Training logits `exp(logit_scale) · v̂ t̂ᵀ` `[B, N]`, and the normalised features."""
        v = l2_normalize(self.encode_video(video, train=train))
        t = l2_normalize(self.encode_text(tokens).astype(jnp.float32))
        logits = jnp.exp(self.clip.logit_scale) * v @ t.T
        return logits, {"video": v, "text": t}
