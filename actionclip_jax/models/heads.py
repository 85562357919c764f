"""ActionCLIP's post-network visual prompts: temporal heads over per-frame CLIP features.

Each head maps frame features `[B, T, E]` to one video feature `[B, E]`. Parameter names mirror
the original `modules/Visual_Prompt.py` keys (`frame_position_embeddings`, `transformer/resblocks_i`,
`lstm_visual`, `shift`, `transformer/transformer_enc/layers_i`), so its checkpoints import by a key
map. `mean_logits` is not ActionCLIP's: it is Open-VCLIP's pooling, the mean of the L2-normalised
frame features, left un-normalised, so that a linear scorer gives the mean of per-frame logits.
Heads compute in fp32 as the original's fusion model does: they see only T tokens, so this costs
nothing next to the ViT.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from actionclip_jax.models.clip import MultiheadAttention, Transformer, l2_normalize, layer_norm

HEADS = ("meanP", "conv1d", "lstm", "transf", "transf_cls", "mean_logits")
# Heads whose output is scored as it is: re-normalising it would change what it means.
UNNORMALISED_HEADS = ("mean_logits",)


class MeanP(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):  # [B, T, E]
        return x.mean(axis=1)


class MeanLogits(nn.Module):
    """Open-VCLIP's pooling: `mean_t(f_t / |f_t|)`, not re-normalised.

    Scored as `s · v · Wᵀ` against normalised class texts W, this is the mean over frames of the
    per-frame logits. Unlike `meanP` (mean, then normalise) its norm is below 1 when the frames
    disagree, which lowers the logits of such videos.
    """

    @nn.compact
    def __call__(self, x, train: bool = False):  # [B, T, E]
        return l2_normalize(x).mean(axis=1)


class Conv1D(nn.Module):
    """Depthwise temporal conv (kernel 3) initialised as a shift, residual, mean over T.

    `original=True` reproduces the original's `x.view(-1, c, t)`: a reshape of the `[B, T, E]`
    memory, not a transpose, so the conv mixes scrambled values. Checkpoints trained that way need
    it; new models should use the correct transpose (the default).
    """

    original: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):  # [B, T, E]
        b, t, e = x.shape
        q = e // 4

        def shift_init(key, shape, dtype):  # [3, 1, E]: x[t-1] | x[t] | x[t+1]
            del key
            k = jnp.zeros(shape, dtype)
            k = k.at[0, 0, :q].set(1.0)
            k = k.at[1, 0, q : q + e // 2].set(1.0)
            return k.at[2, 0, e - q :].set(1.0)

        conv = nn.Conv(e, (3,), padding=1, feature_group_count=e, use_bias=False,
                       kernel_init=shift_init, name="shift")  # fmt: skip
        y = x.reshape(b, e, t).transpose(0, 2, 1) if self.original else x  # [B, T, E]
        return (conv(y) + x).mean(axis=1)


class LSTMCell(nn.Module):
    """PyTorch's `nn.LSTM` parameters, named and laid out as its state dict (`weight_ih_l0` ...)."""

    @nn.compact
    def __call__(self, x):  # [B, T, E] → [B, T, E]
        b, t, e = x.shape
        bound = e**-0.5  # torch's U(±1/sqrt(hidden)) init
        init = lambda key, shape, dtype=jnp.float32: jax.random.uniform(
            key, shape, dtype, -bound, bound
        )
        w_ih = self.param("weight_ih_l0", init, (4 * e, e))
        w_hh = self.param("weight_hh_l0", init, (4 * e, e))
        b_ih = self.param("bias_ih_l0", init, (4 * e,))
        b_hh = self.param("bias_hh_l0", init, (4 * e,))
        xi = x @ w_ih.T + b_ih + b_hh  # [B, T, 4E]: every step's input projection at once

        def step(carry, xi_t):
            h, c = carry
            i, f, g, o = jnp.split(xi_t + h @ w_hh.T, 4, axis=-1)  # torch's gate order
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        zeros = jnp.zeros((b, e), x.dtype)
        _, out = jax.lax.scan(step, (zeros, zeros), xi.swapaxes(0, 1))  # over T
        return out.swapaxes(0, 1)


class LSTM(nn.Module):
    """The original's `LSTM` head: one-layer LSTM, residual, mean over T."""

    @nn.compact
    def __call__(self, x, train: bool = False):  # [B, T, E]
        return (LSTMCell(name="lstm_visual")(x) + x).mean(axis=1)


class TemporalTransformer(nn.Module):
    """The paper's `Transf`: frame positions, a 6-block pre-LN transformer, residual, mean over T.

    LayerNorm eps is 1e-12 (the original's TF-style LayerNorm); the residual adds the features
    *without* position embeddings.
    """

    heads: int
    layers: int = 6
    position_rows: int = 77  # the original sizes the table like CLIP's text context

    @nn.compact
    def __call__(self, x, train: bool = False):  # [B, T, E]
        b, t, e = x.shape
        if t > self.position_rows:
            raise ValueError(
                f"the transf head has {self.position_rows} frame positions but the video has "
                f"{t} frames; use at most {self.position_rows} frames"
            )
        pos = nn.Embed(self.position_rows, e, embedding_init=nn.initializers.normal(0.02),
                       name="frame_position_embeddings")(jnp.arange(t))  # fmt: skip
        y = x + pos
        y = Transformer(self.layers, self.heads, ln_epsilon=1e-12, name="transformer")(y)
        return (y + x).mean(axis=1)


class EncoderLayer(nn.Module):
    """torch.nn.TransformerEncoderLayer with 1.8's defaults: post-LN, ReLU, dropout 0.1."""

    heads: int
    ffn: int = 2048
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x, train: bool = False):  # [B, L, E]
        e = x.shape[-1]
        drop = nn.Dropout(self.dropout, deterministic=not train)
        dense = lambda n, name: nn.Dense(n, kernel_init=nn.initializers.normal(0.02), name=name)
        ln = lambda name: layer_norm(name)
        x = ln("norm1")(
            x + drop(MultiheadAttention(self.heads, out_init_std=0.02, name="self_attn")(x))
        )
        y = dense(e, "linear2")(drop(jax.nn.relu(dense(self.ffn, "linear1")(x))))
        return ln("norm2")(x + drop(y))


class TAggregate(nn.Module):
    """The original's `Transf_cls`: a CLS token through 6 post-LN encoder layers; no residual."""

    num_frames: int
    heads: int = 8
    layers: int = 6

    @nn.compact
    def __call__(self, x, train: bool = False):  # [B, T, E]
        b, t, e = x.shape
        if t != self.num_frames:
            raise ValueError(f"the transf_cls head was built for {self.num_frames} frames, got {t}")
        # The original's `normal().fmod(2) * 0.02`, a poor man's truncated normal.
        trunc = lambda key, shape, dtype=jnp.float32: (
            jnp.fmod(jax.random.normal(key, shape, dtype), 2.0) * 0.02
        )
        cls = self.param("cls_token", trunc, (1, 1, e))
        pos = self.param("pos_embed", trunc, (1, t + 1, e))
        x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, e)), x], axis=1) + pos
        enc = TransformerEncoder(self.heads, self.layers, name="transformer_enc")
        return enc(x, train)[:, 0]


class TransformerEncoder(nn.Module):
    heads: int
    layers: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        for i in range(self.layers):
            x = EncoderLayer(self.heads, name=f"layers_{i}")(x, train)
        return layer_norm("norm")(x)


class TransfCls(nn.Module):
    """Wrapper that gives `Transf_cls` parameters the original's `transformer.` prefix."""

    num_frames: int
    layers: int = 6

    @nn.compact
    def __call__(self, x, train: bool = False):
        return TAggregate(self.num_frames, layers=self.layers, name="transformer")(x, train)


def make_head(name: str, *, heads: int, num_frames: int, position_rows: int = 77,
              conv1d_original: bool = False, layers: int = 6) -> nn.Module:  # fmt: skip
    """The temporal head `name` (one of `HEADS`), named `fusion` inside the video model."""
    if name == "meanP":
        return MeanP(name="fusion")
    if name == "mean_logits":
        return MeanLogits(name="fusion")
    if name == "conv1d":
        return Conv1D(conv1d_original, name="fusion")
    if name == "lstm":
        return LSTM(name="fusion")
    if name == "transf":
        return TemporalTransformer(heads, layers, position_rows=position_rows, name="fusion")
    if name == "transf_cls":
        return TransfCls(num_frames, layers, name="fusion")
    raise ValueError(f"unknown temporal head {name!r}; choose one of {HEADS}")
