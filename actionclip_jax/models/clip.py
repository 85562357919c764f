"""CLIP's ViT image tower and causal text transformer in Flax Linen.

Submodule and parameter names mirror the keys of OpenAI's state dict (`visual/conv1`,
`visual/transformer/resblocks_3/attn/in_proj`, `ln_final`, `text_projection`, ...), so importing a
checkpoint is a key map plus transposes (see `actionclip_jax.weights`).

Written for speed on every backend: one fused QKV projection, `jax.nn.dot_product_attention`, and
patchify as a reshape + matmul instead of a strided convolution. LayerNorm always computes in fp32;
`dtype` is the compute dtype, `param_dtype` the storage dtype of parameters.

The image tower also hosts the frame stages that live inside the ViT: ActionCLIP's
`frame_stage="shift"` (temporal token shift at the input of every block) and `frame_stage="joint"`
(learned time embedding + one space-time sequence per video), and Open-VCLIP's
`frame_stage="neighbour"` (each frame's queries attend to the keys and values of frames t+1, t−1
and t in every block; no new parameters).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any

FRAME_STAGES = ("none", "shift", "joint", "neighbour")
# The MLP nonlinearity: OpenAI's CLIP (and so ActionCLIP) uses QuickGELU; most open_clip models
# and some Hugging Face CLIP checkpoints use the exact (erf) GELU.
ACTIVATIONS = ("quick_gelu", "gelu")

# `jax.nn.dot_product_attention` implementations: "" lets JAX choose (today always XLA's),
# "cudnn" is cuDNN's fused flash attention (NVIDIA GPUs, bf16/fp16 inputs only).
ATTENTION_IMPLS = ("", "xla", "cudnn")
# What a rematerialised block keeps from its forward pass (`jax.checkpoint_policies`):
# nothing (recompute the whole block), every matmul output, or the matmuls without batch
# dimensions (the projections and MLP, not attention's [B, H, L, L] logits).
REMAT_POLICIES = ("nothing_saveable", "dots_saveable", "dots_with_no_batch_dims_saveable")


def quick_gelu(x):
    return x * jax.nn.sigmoid(1.702 * x)


def activation_fn(name: str):
    if name == "quick_gelu":
        return quick_gelu
    if name == "gelu":
        return lambda x: jax.nn.gelu(x, approximate=False)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def layer_norm(name: str | None = None, epsilon: float = 1e-5, param_dtype: Dtype = jnp.float32):
    # CLIP's LayerNorm subclass upcasts to fp32 whatever the compute dtype; callers cast back.
    return nn.LayerNorm(epsilon=epsilon, dtype=jnp.float32, param_dtype=param_dtype, name=name)


def neighbour_keys(x, num_frames: int):
    """Open-VCLIP's key (or value) sequence of every frame: frames t+1, t−1, t, concatenated
    (what `neighbour_attention` computes with, for an attention kernel that takes one sequence).

    The frame past either end is all zeros, not masked: as in the original, its tokens add
    logits of exactly 0 to the softmax (and nothing to the output).

    Args:
      x: `[B*T, L, H, D]` keys or values, the T frames of a video consecutive.
      num_frames: T.
    Returns:
      `[B*T, 3L, H, D]`.
    """
    bt, l, h, d = x.shape
    v = _frames(x, num_frames)  # [B, T, L, H, D]
    zero = jnp.zeros_like(v[:, :1])
    following = jnp.concatenate([v[:, 1:], zero], axis=1)  # frame t+1
    preceding = jnp.concatenate([zero, v[:, :-1]], axis=1)  # frame t-1
    return jnp.concatenate([following, preceding, v], axis=2).reshape(bt, 3 * l, h, d)


def _frames(x, num_frames: int):  # [B*T, ...] → [B, T, ...]
    if x.shape[0] % num_frames:
        raise ValueError(
            f"neighbour attention needs a multiple of {num_frames} frames, got {x.shape[0]}"
        )
    return x.reshape(x.shape[0] // num_frames, num_frames, *x.shape[1:])


def neighbour_attention(q, k, v, num_frames: int):
    """Attention of each frame's queries over the keys and values of frames t+1, t−1 and t
    (`neighbour_keys`, zeros past the ends), without building those sequences: three `[L, L]`
    logit blocks per frame (the ones against a missing frame are 0 and cost nothing), one
    softmax across them, normalised after the value matmuls. The same numbers as
    `dot_product_attention(q, neighbour_keys(k), neighbour_keys(v))` up to rounding, at ~0.7× its
    time on a CPU (docs/benchmarks.md, "Open-vocabulary recipes"); logits and softmax in fp32.

    Args:
      q, k, v: `[B*T, L, H, D]`, the T frames of a video consecutive.
      num_frames: T.
    Returns:
      `[B*T, L, H, D]`.
    """
    bt, l, h, d = q.shape
    # [B, H, T, L, D]
    q, k, v = (_frames(x, num_frames).transpose(0, 3, 1, 2, 4) for x in (q, k, v))
    q = q * jnp.asarray(d**-0.5, q.dtype)

    def logits(qs, ks):  # [B, H, t, L, L]
        return jnp.einsum("bhtld,bhtmd->bhtlm", qs, ks, preferred_element_type=jnp.float32)

    def pad(x, at_end):  # one frame of zeros after (t+1) or before (t−1) the T−1 real ones
        zero = jnp.zeros((*x.shape[:2], 1, *x.shape[3:]), x.dtype)  # x may have no frames
        return jnp.concatenate([x, zero] if at_end else [zero, x], axis=2)

    s_self = logits(q, k)
    s_next = pad(logits(q[:, :, :-1], k[:, :, 1:]), at_end=True)  # [B, H, T, L, L]
    s_prev = pad(logits(q[:, :, 1:], k[:, :, :-1]), at_end=False)
    top = jnp.maximum(jnp.maximum(s_self.max(-1, keepdims=True), s_next.max(-1, keepdims=True)),
                      s_prev.max(-1, keepdims=True))  # fmt: skip
    e_self, e_next, e_prev = (jnp.exp(s - top) for s in (s_self, s_next, s_prev))
    total = (
        e_self.sum(-1, keepdims=True)
        + e_next.sum(-1, keepdims=True)
        + e_prev.sum(-1, keepdims=True)
    )  # [B, H, T, L, 1]

    def mix(e, vs):  # [B, H, t, L, D]
        return jnp.einsum("bhtlm,bhtmd->bhtld", e.astype(v.dtype), vs,
                          preferred_element_type=jnp.float32)  # fmt: skip

    out = (
        mix(e_self, v)
        + pad(mix(e_next[:, :, :-1], v[:, :, 1:]), at_end=True)
        + pad(mix(e_prev[:, :, 1:], v[:, :, :-1]), at_end=False)
    ) / total
    return out.astype(q.dtype).transpose(0, 2, 3, 1, 4).reshape(bt, l, h, d)


class MultiheadAttention(nn.Module):
    """torch.nn.MultiheadAttention's math with one fused QKV matmul.

    `in_proj` holds `in_proj_weight.T`: its output columns are q, k, v, each split into contiguous
    64-wide heads, exactly as PyTorch does. With `neighbour_frames=T` the keys and values are those
    of `neighbour_keys` (Open-VCLIP; computed by `neighbour_attention`); the same parameters.
    """

    heads: int
    causal: bool = False
    out_init_std: float | None = None
    neighbour_frames: int = 0
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    attention_impl: str = ""  # one of ATTENTION_IMPLS

    @nn.compact
    def __call__(self, x):  # [B, L, W]
        b, l, w = x.shape
        if w % self.heads:
            raise ValueError(f"width {w} is not divisible by {self.heads} heads")
        in_std = w**-0.5
        out_std = self.out_init_std if self.out_init_std is not None else in_std
        qkv = nn.Dense(
            3 * w,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="in_proj",
            kernel_init=nn.initializers.normal(in_std),
        )(x)  # [B, L, 3W]
        q, k, v = jnp.split(
            qkv.reshape(b, l, 3 * self.heads, w // self.heads), 3, axis=2
        )  # [B, L, H, D]
        # Every implementation takes the logits and softmax in fp32 whatever the input dtype
        # (XLA's: an fp32-accumulating QK^T and an fp32 softmax; cuDNN's: fp32 statistics).
        if self.neighbour_frames and self.attention_impl != "cudnn":
            out = neighbour_attention(q, k, v, self.neighbour_frames)  # [B, L, H, D]
        else:
            if self.neighbour_frames:  # cuDNN's fused kernel takes the 3L keys as they are
                k = neighbour_keys(k, self.neighbour_frames)  # [B, 3L, H, D]
                v = neighbour_keys(v, self.neighbour_frames)
            out = jax.nn.dot_product_attention(
                q, k, v, is_causal=self.causal, implementation=self.attention_impl or None
            )  # [B, L, H, D]
        return nn.Dense(
            w,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="out_proj",
            kernel_init=nn.initializers.normal(out_std),
        )(out.reshape(b, l, w))


class MLP(nn.Module):
    proj_init_std: float | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    activation: str = "quick_gelu"

    @nn.compact
    def __call__(self, x):  # [B, L, W]
        w = x.shape[-1]
        proj_std = self.proj_init_std if self.proj_init_std is not None else w**-0.5
        x = nn.Dense(
            4 * w,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="c_fc",
            kernel_init=nn.initializers.normal((2 * w) ** -0.5),
        )(x)
        x = activation_fn(self.activation)(x)
        return nn.Dense(
            w,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="c_proj",
            kernel_init=nn.initializers.normal(proj_std),
        )(x)


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    heads: int
    causal: bool = False
    num_layers: int = 12  # for the depth-scaled init of the output projections, as in CLIP
    ln_epsilon: float = 1e-5
    neighbour_frames: int = 0  # > 0: Open-VCLIP's neighbour-frame attention over T frames
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    activation: str = "quick_gelu"
    attention_impl: str = ""

    @nn.compact
    def __call__(self, x):  # [B, L, W]
        w = x.shape[-1]
        proj_std = w**-0.5 * (2 * self.num_layers) ** -0.5
        y = layer_norm("ln_1", self.ln_epsilon, self.param_dtype)(x).astype(self.dtype)
        x = x + MultiheadAttention(
            self.heads,
            self.causal,
            proj_std,
            neighbour_frames=self.neighbour_frames,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            attention_impl=self.attention_impl,
            name="attn",
        )(y)
        y = layer_norm("ln_2", self.ln_epsilon, self.param_dtype)(x).astype(self.dtype)
        mlp = MLP(proj_std, self.dtype, self.param_dtype, self.activation, name="mlp")
        return x + mlp(y)


def temporal_shift(x, num_frames: int, fold_div: int = 8):
    """TSM shift of ActionCLIP's in-network prompt on ViT tokens.

    Of the patch tokens' channels, the first C/8 take the next frame's values and the next C/8 the
    previous frame's (zeros past either end); the CLS token (index 0) is never shifted.

    Args:
      x: `[B*T, L, C]` tokens, frames of one video consecutive.
      num_frames: T.
    """
    bt, l, c = x.shape
    fold = c // fold_div
    cls, patches = (
        x[:, :1],
        x[:, 1:].reshape(bt // num_frames, num_frames, l - 1, c),
    )  # [B, T, N, C]
    pad = jnp.zeros_like(patches[:, :1, :, :fold])
    left = jnp.concatenate([patches[:, 1:, :, :fold], pad], axis=1)  # out[t] = x[t+1]
    right = jnp.concatenate([pad, patches[:, :-1, :, fold : 2 * fold]], axis=1)  # out[t] = x[t-1]
    patches = jnp.concatenate([left, right, patches[:, :, :, 2 * fold :]], axis=-1)
    return jnp.concatenate([cls, patches.reshape(bt, l - 1, c)], axis=1)


class Transformer(nn.Module):
    """A stack of `resblocks_{i}`; optionally TSM-shifts the block inputs (`shift_frames` > 0) or
    attends to neighbouring frames (`neighbour_frames` > 0)."""

    layers: int
    heads: int
    causal: bool = False
    ln_epsilon: float = 1e-5
    shift_frames: int = 0
    neighbour_frames: int = 0
    remat: bool = False
    remat_policy: str = "nothing_saveable"  # one of REMAT_POLICIES, used when remat is on
    attention_impl: str = ""  # one of ATTENTION_IMPLS
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    activation: str = "quick_gelu"

    @nn.compact
    def __call__(self, x):  # [B, L, W]
        block = ResidualAttentionBlock
        if self.remat:
            if self.remat_policy not in REMAT_POLICIES:
                raise ValueError(
                    f"remat_policy must be one of {REMAT_POLICIES}, got {self.remat_policy!r}"
                )
            block = nn.remat(block, policy=getattr(jax.checkpoint_policies, self.remat_policy))
        for i in range(self.layers):
            if self.shift_frames:
                x = temporal_shift(x, self.shift_frames)
            x = block(
                self.heads,
                self.causal,
                self.layers,
                self.ln_epsilon,
                self.neighbour_frames,
                self.dtype,
                self.param_dtype,
                self.activation,
                attention_impl=self.attention_impl,
                name=f"resblocks_{i}",
            )(x)
        return x


class Patchify(nn.Module):
    """CLIP's `conv1` (a P×P stride-P convolution without bias) as a reshape and one matmul.

    The kernel keeps the Flax `Conv` layout `[P, P, 3, W]`.
    """

    width: int
    patch_size: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, images):  # [N, H, W, 3]
        p = self.patch_size
        n, h, w, c = images.shape
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (p, p, c, self.width), self.param_dtype
        )
        x = images.reshape(n, h // p, p, w // p, p, c).transpose(
            0, 1, 3, 2, 4, 5
        )  # [N, gh, gw, P, P, 3]
        x = x.reshape(n, (h // p) * (w // p), p * p * c)
        return x.astype(self.dtype) @ kernel.reshape(p * p * c, self.width).astype(
            self.dtype
        )  # [N, g², W]


class VisionTransformer(nn.Module):
    """CLIP's ViT: images `[N, R, R, 3]` (CLIP-normalised, NHWC) → features `[N, E]`.

    With `frame_stage="joint"` the input is `[B*T, R, R, 3]` (frames of a video consecutive) and the
    output is one feature per video, `[B, E]`. With `"shift"` and `"neighbour"` the input is laid
    out the same way and the output is one feature per frame.
    """

    input_resolution: int
    patch_size: int
    width: int
    layers: int
    heads: int
    output_dim: int
    frame_stage: str = "none"
    num_frames: int = 1
    remat: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    activation: str = "quick_gelu"
    ln_epsilon: float = 1e-5
    remat_policy: str = "nothing_saveable"
    attention_impl: str = ""

    @nn.compact
    def __call__(self, images):  # [N, R, R, 3]
        if self.frame_stage not in FRAME_STAGES:
            raise ValueError(f"frame_stage must be one of {FRAME_STAGES}, got {self.frame_stage!r}")
        r, p, w = self.input_resolution, self.patch_size, self.width
        if images.ndim != 4 or images.shape[1:] != (r, r, 3):
            raise ValueError(
                f"expected images of shape [N, {r}, {r}, 3] (NHWC, CLIP-normalised), "
                f"got {images.shape}"
            )
        scale = w**-0.5
        grid = r // p
        x = Patchify(w, p, self.dtype, self.param_dtype, name="conv1")(images)  # [N, g², W]
        cls = self.param("class_embedding", nn.initializers.normal(scale), (w,), self.param_dtype)
        pos = self.param(
            "positional_embedding",
            nn.initializers.normal(scale),
            (grid * grid + 1, w),
            self.param_dtype,
        )
        n = x.shape[0]
        x = jnp.concatenate([jnp.broadcast_to(cls.astype(self.dtype), (n, 1, w)), x], axis=1)
        x = x + pos.astype(self.dtype)  # [N, g²+1, W]

        if self.frame_stage == "joint":
            t = self.num_frames
            time = self.param(
                "time_embedding", nn.initializers.normal(scale), (t, w), self.param_dtype
            )
            if n % t:
                raise ValueError(
                    f"joint frame stage needs a multiple of num_frames={t} images, got {n}"
                )
            b = n // t
            patches = (
                x[:, 1:].reshape(b, t, grid * grid, w) + time.astype(self.dtype)[None, :, None]
            )
            # Patch-major, time-minor order, as the original's rearrange '(b n) t m -> b (n t) m'.
            patches = patches.transpose(0, 2, 1, 3).reshape(b, grid * grid * t, w)
            x = jnp.concatenate([x[::t, :1], patches], axis=1)  # [B, 1 + g²·T, W]

        x = layer_norm("ln_pre", self.ln_epsilon, self.param_dtype)(x).astype(self.dtype)
        shift = self.num_frames if self.frame_stage == "shift" else 0
        neighbour = self.num_frames if self.frame_stage == "neighbour" else 0
        x = Transformer(
            self.layers,
            self.heads,
            ln_epsilon=self.ln_epsilon,
            shift_frames=shift,
            neighbour_frames=neighbour,
            remat=self.remat,
            remat_policy=self.remat_policy,
            attention_impl=self.attention_impl,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            activation=self.activation,
            name="transformer",
        )(x)
        x = layer_norm("ln_post", self.ln_epsilon, self.param_dtype)(x[:, 0]).astype(self.dtype)
        proj = self.param(
            "proj", nn.initializers.normal(scale), (w, self.output_dim), self.param_dtype
        )
        return x @ proj.astype(self.dtype)  # [N, E]


class CLIP(nn.Module):
    """CLIP with a ViT image tower. Sizes are read off checkpoints by `weights.clip_sizes`.

    `with_text=False` builds the image tower alone: no text transformer, embeddings, projection
    or logit scale are created (the unimodal classifier has no use for them).
    """

    embed_dim: int
    image_resolution: int
    vision_layers: int
    vision_width: int
    vision_patch_size: int
    context_length: int
    vocab_size: int
    transformer_width: int
    transformer_heads: int
    transformer_layers: int
    vision_heads: int | None = None  # CLIP's rule: vision_width // 64
    activation: str = "quick_gelu"  # MLP nonlinearity of both towers, one of ACTIVATIONS
    ln_epsilon: float = 1e-5  # LayerNorm epsilon of both towers
    frame_stage: str = "none"
    num_frames: int = 1
    with_text: bool = True
    remat: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    # Speed options of both towers' transformers (they change no parameter).
    remat_policy: str = "nothing_saveable"
    attention_impl: str = ""

    def setup(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        self.visual = VisionTransformer(
            self.image_resolution,
            self.vision_patch_size,
            self.vision_width,
            self.vision_layers,
            self.vision_heads or self.vision_width // 64,
            self.embed_dim,
            self.frame_stage,
            self.num_frames,
            self.remat,
            self.dtype,
            self.param_dtype,
            activation=self.activation,
            ln_epsilon=self.ln_epsilon,
            remat_policy=self.remat_policy,
            attention_impl=self.attention_impl,
        )
        if not self.with_text:
            return
        wt = self.transformer_width
        self.token_embedding = nn.Embed(
            self.vocab_size,
            wt,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            embedding_init=nn.initializers.normal(0.02),
        )
        self.positional_embedding = self.param(
            "positional_embedding",
            nn.initializers.normal(0.01),
            (self.context_length, wt),
            self.param_dtype,
        )
        self.transformer = Transformer(
            self.transformer_layers,
            self.transformer_heads,
            causal=True,
            ln_epsilon=self.ln_epsilon,
            remat=self.remat,
            remat_policy=self.remat_policy,
            attention_impl=self.attention_impl,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            activation=self.activation,
        )
        self.ln_final = layer_norm(epsilon=self.ln_epsilon, param_dtype=self.param_dtype)
        self.text_projection = self.param(
            "text_projection",
            nn.initializers.normal(wt**-0.5),
            (wt, self.embed_dim),
            self.param_dtype,
        )
        self.logit_scale = self.param(
            "logit_scale", nn.initializers.constant(np.log(1 / 0.07)), (), jnp.float32
        )

    def encode_image(self, images):  # [N, R, R, 3] → [N, E]
        return self.visual(images)

    def encode_text(self, tokens):  # [N, L] int → [N, E]
        if not self.with_text:
            raise ValueError("this CLIP was built without its text tower (with_text=False)")
        n, l = tokens.shape
        if l > self.context_length:
            raise ValueError(
                f"token sequences of length {l} exceed the context length {self.context_length}"
            )
        x = self.token_embedding(tokens) + self.positional_embedding[:l].astype(self.dtype)
        x = self.transformer(x)  # [N, L, Wt]
        # Causal attention: trailing padding never reaches the EOT token, so L < 77 is exact too.
        x = self.ln_final(x[jnp.arange(n), jnp.argmax(tokens, axis=-1)]).astype(
            self.dtype
        )  # EOT = max id
        return x @ self.text_projection.astype(self.dtype)

    def __call__(self, images, tokens):
        """Logits `[N_img, N_txt]`: exp(logit_scale) × cosine similarity."""
        img = l2_normalize(self.encode_image(images).astype(jnp.float32))
        txt = l2_normalize(self.encode_text(tokens).astype(jnp.float32))
        return jnp.exp(self.logit_scale) * img @ txt.T


def l2_normalize(x, axis: int = -1, eps: float = 1e-12):
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=axis, keepdims=True), eps * eps))
