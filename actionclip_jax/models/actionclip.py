"""The ActionCLIP video–text model: CLIP + a visual prompt, scored against prompted label text.

The visual prompt is two independent choices:
- the frame stage, inside the ViT: `none`, `shift` (temporal token shift in every block),
  `joint` (time embedding + one space-time sequence per video) or `neighbour` (Open-VCLIP's
  attention to the neighbouring frames' keys and values in every block);
- the temporal head over frame features: `meanP`, `conv1d`, `lstm`, `transf`, `transf_cls`, or
  `mean_logits` (Open-VCLIP's mean of per-frame logits: its output is scored un-normalised).
The original pairs `shift` and `joint` with `meanP`; any pair works here. `pixel_norm` records
which normalisation of the input pixels the weights expect (`augment.PIXEL_NORMS`; the caller
applies it): CLIP's, or ImageNet's for ViFi-CLIP.

`projectors=True` adds FROSTER's residual projectors of frame and class-text features
(`projector_v`, `projector_t`; `models/projector.py`), which only its distillation loss reads:
scoring never uses them, and weights written for inference leave them out
(`inference_params`).

`num_classes > 0` with `with_text=False` is the paper's unimodal baseline instead: the same video
encoder with a 1-of-N linear layer (`classifier`) on the un-normalised video feature, and no text
tower at all. Which loss trains which of these is the objective's business
(`actionclip_jax.objectives`), not the model's.

`build(spec)` is the one way to make the model from a spec, the dict that checkpoints and
converted directories record: `{"clip": sizes, "video": visual prompt, "num_classes",
"with_text", "projectors"}`.
"""

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from actionclip_jax.models.clip import CLIP, FRAME_STAGES, l2_normalize
from actionclip_jax.models.heads import HEADS, UNNORMALISED_HEADS, make_head
from actionclip_jax.models.projector import ResidualProjector

Dtype = Any

# The visual prompt's fields of a spec, with the defaults of a plain CLIP checkpoint.
VIDEO_DEFAULTS = {
    "num_frames": 8,
    "frame_stage": "none",
    "head": "meanP",
    "position_rows": 77,
    "conv1d_original": False,
    "head_layers": 6,
    "pixel_norm": "clip",
}
# Parameters that training objectives add beside the video-text model (FROSTER's projectors):
# not part of what a trained model scores with.
TRAINING_ONLY = ("projector_v", "projector_t")


class ActionCLIP(nn.Module):
    """Video `[B, T, H, W, 3]` (CLIP-normalised) and tokens `[N, L]` → matched features.

    Parameters: `clip` (the CLIP tree, as `CLIP`'s) and `fusion` (the temporal head; empty for
    `meanP`). With `with_text=False`, `clip` holds the image tower only (`clip/visual`); with
    `num_classes > 0`, `classifier` is a linear layer over that many classes.
    """

    clip_sizes: Mapping[str, int]
    num_frames: int
    frame_stage: str = "none"
    head: str = "transf"
    position_rows: int = 77  # rows of the transf head's frame-position table
    head_layers: int = 6  # blocks of the transf / transf_cls heads (the original: 6)
    conv1d_original: bool = False
    with_text: bool = True  # build the text tower and the logit scale
    num_classes: int = 0  # > 0: a linear layer over this many classes (the unimodal baseline)
    pixel_norm: str = "clip"  # the input normalisation the weights expect (not applied here)
    projectors: bool = False  # FROSTER's residual projectors (projector_v, projector_t)
    remat: bool = False
    dtype: Dtype = jnp.float32
    # CLIP's transformers only: `clip.REMAT_POLICIES` and `clip.ATTENTION_IMPLS` (the temporal
    # head computes in fp32, which cuDNN's attention does not take, and is small).
    remat_policy: str = "nothing_saveable"
    attention_impl: str = ""

    def setup(self):
        if not self.with_text and self.num_classes <= 0:
            raise ValueError("a model without text tower needs num_classes > 0 to score anything")
        if self.frame_stage not in FRAME_STAGES:
            raise ValueError(f"frame_stage must be one of {FRAME_STAGES}, got {self.frame_stage!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        self.clip = CLIP(
            **self.clip_sizes,
            frame_stage=self.frame_stage,
            num_frames=self.num_frames,
            with_text=self.with_text,
            remat=self.remat,
            dtype=self.dtype,
            remat_policy=self.remat_policy,
            attention_impl=self.attention_impl,
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
        if self.num_classes > 0:
            self.classifier = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=jnp.float32)
        if self.projectors:
            self.projector_v = ResidualProjector()
            self.projector_t = ResidualProjector()

    def encode_frames(self, video):  # [B, T, H, W, 3] → [B, T', E]
        b, t = video.shape[:2]
        if t != self.num_frames:
            raise ValueError(f"the model was built for {self.num_frames} frames, got {t}")
        x = self.clip.encode_image(video.reshape(b * t, *video.shape[2:]))
        return x.reshape(b, -1, x.shape[-1])  # T' = 1 for joint: one feature per video

    def encode_video(self, video, train: bool = False):  # [B, T, H, W, 3] → [B, E]
        # Frame features are not normalised before the head, as in the original.
        return self.fusion(self.encode_frames(video).astype(jnp.float32), train=train)

    def video_embedding(self, video, train: bool = False):  # [B, T, H, W, 3] → [B, E] fp32
        """The video feature that is scored against normalised class texts: L2-normalised, except
        for heads whose output is scored as it is (`mean_logits`)."""
        return self.embeddings(video, train=train)[0]

    def embeddings(self, video, train: bool = False):
        """`(video_embedding [B, E], frame features [B, T', E])`, both fp32; the frame features
        (the head's input) are not normalised."""
        frames = self.encode_frames(video).astype(jnp.float32)
        v = self.fusion(frames, train=train).astype(jnp.float32)
        return (v if self.head in UNNORMALISED_HEADS else l2_normalize(v)), frames

    def project_video(self, x):  # [..., E] → [..., E] fp32
        return self.projector_v(x)

    def project_text(self, x):  # [..., E] → [..., E] fp32
        return self.projector_t(x)

    def encode_text(self, tokens):  # [N, L] → [N, E]
        return self.clip.encode_text(tokens)

    def classify(self, video, train: bool = False):
        """The linear layer's logits `[B, C]` on the un-normalised video feature."""
        return self.classifier(self.encode_video(video, train=train))

    def __call__(self, video, tokens=None, train: bool = False):
        """Training logits and named features.

        With tokens `[N, L]`: `exp(logit_scale) · v̂ t̂ᵀ` `[B, N]` and the normalised features
        `{"video": v̂, "text": t̂}` (v̂ as `video_embedding`). Without (a model with a linear
        layer): its logits `[B, C]`
        and `{"video": v}`, the un-normalised video feature the layer reads.
        """
        if tokens is None:
            if self.num_classes <= 0:
                raise ValueError("this model has no linear layer: pass text tokens to score")
            v = self.encode_video(video, train=train)  # [B, E]
            return self.classifier(v), {"video": v}
        v = self.video_embedding(video, train=train)
        t = l2_normalize(self.encode_text(tokens).astype(jnp.float32))
        logits = jnp.exp(self.clip.logit_scale) * v @ t.T
        return logits, {"video": v, "text": t}


def build(
    spec: Mapping,
    *,
    dtype: Dtype = jnp.float32,
    remat: bool = False,
    remat_policy: str = "nothing_saveable",
    attention_impl: str = "",
) -> ActionCLIP:
    """The model a spec describes (see the module docstring); missing video fields take
    `VIDEO_DEFAULTS`.

    The keyword arguments are how the model computes, not what it is: they change no parameter
    and are not part of the spec (a checkpoint trained with one runs with any other).
    """
    video = {**VIDEO_DEFAULTS, **spec.get("video", {})}
    return ActionCLIP(
        clip_sizes=dict(spec["clip"]),
        num_frames=int(video["num_frames"]),
        frame_stage=video["frame_stage"],
        head=video["head"],
        position_rows=int(video["position_rows"]),
        conv1d_original=bool(video["conv1d_original"]),
        head_layers=int(video["head_layers"]),
        pixel_norm=str(video["pixel_norm"]),
        with_text=bool(spec.get("with_text", True)),
        num_classes=int(spec.get("num_classes", 0)),
        projectors=bool(spec.get("projectors", False)),
        remat=remat,
        dtype=dtype,
        remat_policy=remat_policy,
        attention_impl=attention_impl,
    )


def spec_of(model: ActionCLIP) -> dict:
    """The spec `build` turns back into `model` (sizes, visual prompt, layer and towers)."""
    spec = {
        "clip": dict(model.clip_sizes),
        "video": {k: getattr(model, k) for k in VIDEO_DEFAULTS},
        "num_classes": int(model.num_classes),
        "with_text": bool(model.with_text),
    }
    if model.projectors:  # only FROSTER's objective asks for them (`objectives.model_fields`)
        spec["projectors"] = True
    return spec


def inference_params(params):
    """`params` without what only training reads (`TRAINING_ONLY`): the weights a trained model
    is scored, converted or exported with."""
    return {k: v for k, v in params.items() if k not in TRAINING_ONLY}


def dummy_inputs(model: ActionCLIP, batch: int = 1):
    """Abstract arguments of `model.init`: a video, and tokens when the model reads text."""
    r = model.clip_sizes["image_resolution"]
    video = jax.ShapeDtypeStruct((batch, model.num_frames, r, r, 3), jnp.float32)
    if not model.with_text:
        return (video,)
    return video, jax.ShapeDtypeStruct((batch, model.clip_sizes["context_length"]), jnp.int32)


def init_params(model: ActionCLIP, rng):
    """Randomly initialised parameters (callable under `jax.jit` / `jax.eval_shape`)."""
    args = [jnp.zeros(a.shape, a.dtype) for a in dummy_inputs(model)]
    params = model.init(rng, *args)["params"]
    if model.projectors:  # not on the __call__ path: initialised on their own
        e = model.clip_sizes["embed_dim"]
        for i, name in enumerate(TRAINING_ONLY):
            params[name] = ResidualProjector().init(
                jax.random.fold_in(rng, 1 + i), jnp.zeros((1, e), jnp.float32)
            )["params"]
    return params


def abstract_params(model: ActionCLIP):
    """The parameters' shapes and dtypes, with nothing allocated."""
    return jax.eval_shape(lambda rng: init_params(model, rng), jax.random.key(0))
