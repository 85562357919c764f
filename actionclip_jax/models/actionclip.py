"""The ActionCLIP video–text model: CLIP + a visual prompt, scored against prompted label text.

The visual prompt is two independent choices:
- the frame stage, inside the ViT: `none`, `shift` (temporal token shift in every block) or
  `joint` (time embedding + one space-time sequence per video);
- the temporal head over frame features: `meanP`, `conv1d`, `lstm`, `transf`, `transf_cls`.
The original pairs `shift` and `joint` with `meanP`; any pair works here.

`objective="classifier"` is the paper's unimodal baseline instead: the same video encoder with a
1-of-N linear layer (`classifier`) on the un-normalised video feature, and no text tower at all.
"""

from typing import Any, Mapping

import flax.linen as nn
import jax.numpy as jnp

from actionclip_jax.models.clip import CLIP, FRAME_STAGES, l2_normalize
from actionclip_jax.models.heads import HEADS, make_head

Dtype = Any

OBJECTIVES = ("video_text", "classifier")


class ActionCLIP(nn.Module):
    """Video `[B, T, H, W, 3]` (CLIP-normalised) and tokens `[N, L]` → matched features.

    Parameters: `clip` (the CLIP tree, as `CLIP`'s) and `fusion` (the temporal head; empty for
    `meanP`). With `objective="classifier"`, `clip` holds the image tower only (`clip/visual`)
    and `classifier` the linear layer over `num_classes` classes.
    """

    clip_sizes: Mapping[str, int]
    num_frames: int
    frame_stage: str = "none"
    head: str = "transf"
    position_rows: int = 77  # rows of the transf head's frame-position table
    head_layers: int = 6  # blocks of the transf / transf_cls heads (the original: 6)
    conv1d_original: bool = False
    objective: str = "video_text"  # video_text | classifier (the unimodal baseline)
    num_classes: int = 0  # classes of the classifier's linear layer (classifier only)
    remat: bool = False
    dtype: Dtype = jnp.float32

    def setup(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.objective == "classifier" and self.num_classes <= 0:
            raise ValueError(
                f"objective='classifier' needs num_classes > 0, got {self.num_classes}"
            )
        if self.frame_stage not in FRAME_STAGES:
            raise ValueError(f"frame_stage must be one of {FRAME_STAGES}, got {self.frame_stage!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        self.clip = CLIP(
            **self.clip_sizes,
            frame_stage=self.frame_stage,
            num_frames=self.num_frames,
            with_text=self.objective == "video_text",
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
        if self.objective == "classifier":
            self.classifier = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=jnp.float32)

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

    def __call__(self, video, tokens=None, train: bool = False):
        """Training logits and named features.

        video_text: `exp(logit_scale) · v̂ t̂ᵀ` `[B, N]` for tokens `[N, L]`, and the normalised
        features `{"video": v̂, "text": t̂}`. classifier: the linear layer's logits `[B, C]` (no
        tokens), and `{"video": v}`, the un-normalised video feature the layer reads.
        """
        if self.objective == "classifier":
            if tokens is not None:
                raise ValueError("objective='classifier' takes no text tokens")
            v = self.encode_video(video, train=train)  # [B, E]
            return self.classifier(v), {"video": v}
        if tokens is None:
            raise ValueError("objective='video_text' needs text tokens")
        v = l2_normalize(self.encode_video(video, train=train))
        t = l2_normalize(self.encode_text(tokens).astype(jnp.float32))
        logits = jnp.exp(self.clip.logit_scale) * v @ t.T
        return logits, {"video": v, "text": t}
