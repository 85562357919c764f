"""An independent PyTorch transcription of the original ActionCLIP video model.

The parity tests of the JAX port compare against this file. It follows the behaviour of the
original repository (sallymmx/ActionCLIP) as recorded in the team's reference notes (ACTIONCLIP.md)
(sections 1, 2.1-2.5, 3, 4 and 7), including its quirks:

* fusion heads (``modules/Visual_Prompt.py:visual_prompt``): ``meanP``, ``Conv_1D`` (with the
  ``view(-1, c, t)`` reshape bug), ``LSTM``, ``Transf`` (TF-style LayerNorm, eps 1e-12, residual
  to the features without the frame position embeddings, mean over T) and ``Transf_cls``
  (torch's post-LN ``nn.TransformerEncoder``);
* the in-network "Shift" prompt (``modules/temporal_shift.py:TemporalShift_VIT``);
* the pre-network "Joint" prompt with its intended semantics (the shipped code does not run);
* training logits, the KL loss (``utils/KLLoss.py`` + ``utils/tools.py:gen_label``), the
  training-checkpoint layout (``utils/saving.py``) and the single-view test path (``test.py``).

Everything runs in float32 on the CPU. CLIP itself is OpenAI's ``clip/model.py`` (via
``reference.reference_clip_module()``), whose keys and maths are those of ActionCLIP's copy.
Nothing here imports the JAX package.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import reference

SIM_HEADS = ("meanP", "LSTM", "Transf", "Conv_1D", "Transf_cls")

# CLIP's normalisation constants, as in utils/Augmentation.py.
INPUT_MEAN = (0.48145466, 0.4578275, 0.40821073)
INPUT_STD = (0.26862954, 0.26130258, 0.27577711)

# The 16 prompt templates of utils/Text_Prompt.py, in text_id order (§3).
ACTIONCLIP_TEMPLATES = (
    "a photo of action {}",
    "a picture of action {}",
    "Human action of {}",
    "{}, an action",
    "{} this is an action",
    "{}, a video of action",
    "Playing action of {}",
    "{}",
    "Playing a kind of action, {}",
    "Doing a kind of action, {}",
    "Look, the human is {}",
    "Can you recognize the action of {}?",
    "Video classification of {}",
    "A video of {}",
    "The man is {}",
    "The woman is {}",
)

SOT_ID = 49406
EOT_ID = 49407


# ------------------------------------------------------------------------------------------------
# Fusion ("post-network prompt") heads, §2.2
# ------------------------------------------------------------------------------------------------


class TFLayerNorm(nn.Module):
    """LayerNorm with epsilon inside the square root, eps 1e-12, computed in the input dtype.

    Parameters are called ``weight`` and ``bias`` as in the original.
    """

    def __init__(self, width: int, eps: float = 1e-12):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        var = (x - mean).pow(2).mean(-1, keepdim=True)
        normed = (x - mean) / torch.sqrt(var + self.variance_epsilon)
        return self.weight * normed + self.bias


class _QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class TemporalBlock(nn.Module):
    """Pre-LN residual attention block of the Transf head (TF LayerNorms, no mask, no dropout)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = TFLayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(width, 4 * width)),
                    ("gelu", _QuickGELU()),
                    ("c_proj", nn.Linear(4 * width, width)),
                ]
            )
        )
        self.ln_2 = TFLayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [L, N, D]
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.mlp(self.ln_2(x))
        return x


class TemporalTransformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(*[TemporalBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


def _pseudo_trunc_normal_(t: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    """The original's "trunc_normal_": ``normal().fmod(2) * std`` (mean 0)."""
    with torch.no_grad():
        return t.normal_().fmod_(2).mul_(std)


class TAggregate(nn.Module):
    """The Transf_cls head: CLS token + learned positions + torch's post-LN encoder.

    ``nn.TransformerEncoderLayer(d_model=E, nhead=8)`` with torch 1.8's defaults, spelled out:
    FFN 2048, dropout 0.1, ReLU, post-LN (``norm_first=False``), sequence-first
    (``batch_first=False``), LayerNorm eps 1e-5. ``enable_nested_tensor=False`` because no
    padding mask is ever used. The forward runs with torch's MHA/encoder "fast path" switched
    off so torch 2.x computes through the same Python path as torch 1.8 (with
    ``batch_first=False`` it would not be taken anyway).
    """

    def __init__(self, clip_length: int, embed_dim: int, n_layers: int = 6):
        super().__init__()
        self.clip_length = clip_length
        layer = nn.TransformerEncoderLayer(
            d_model=embed_dim,
            nhead=8,
            dim_feedforward=2048,
            dropout=0.1,
            activation="relu",
            layer_norm_eps=1e-5,
            batch_first=False,
            norm_first=False,
        )
        self.transformer_enc = nn.TransformerEncoder(
            layer, num_layers=n_layers, norm=nn.LayerNorm(embed_dim), enable_nested_tensor=False
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, clip_length + 1, embed_dim))
        self.pos_drop = nn.Dropout(p=0.0)  # present in the original, never applied
        _pseudo_trunc_normal_(self.pos_embed)
        _pseudo_trunc_normal_(self.cls_token)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module):
        # Linear (including MHA's out_proj) ~ pseudo-truncated N(0, 0.02), bias 0; LayerNorm 1/0.
        # MHA's in_proj_weight keeps torch's xavier init, identical in all layers (deep copies).
        if isinstance(m, nn.Linear):
            _pseudo_trunc_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [b, t, c] -> [b, c]
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1) + self.pos_embed
        x = x.transpose(0, 1)  # [1 + t, b, c], sequence-first
        previous = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            out = self.transformer_enc(x)
        finally:
            torch.backends.mha.set_fastpath_enabled(previous)
        return out[0]


def _conv1d_init_weight(embed_dim: int) -> torch.Tensor:
    """The Conv_1D head's depthwise kernel: [E, 1, 3], mostly zeros.

    Channels ``[:E//4]`` get ``[1, 0, 0]`` (out[t] = x[t-1]), ``[E//4 : E//4 + E//2]`` get
    ``[0, 1, 0]`` (identity) and ``[(-E)//4:]`` get ``[0, 0, 1]`` (out[t] = x[t+1]). The last
    slice is Python's ``weight[-embed_dim // 4:]``, i.e. floor division of the NEGATIVE number:
    when E is not a multiple of 4 it covers ``ceil(E/4)`` channels.
    """
    w = torch.zeros(embed_dim, 1, 3)
    q, h = embed_dim // 4, embed_dim // 2
    w[:q, 0, 0] = 1.0
    w[q : q + h, 0, 1] = 1.0
    w[(-embed_dim) // 4 :, 0, 2] = 1.0
    return w


class VisualPrompt(nn.Module):
    """``visual_prompt(sim_head, clip_state_dict, T)``: fuses per-frame features [b, t, c] -> [b, c].

    ``clip_state_dict`` only supplies sizes: E = ``text_projection.shape[1]``, the position table
    length = ``positional_embedding.shape[0]`` (77, the TEXT context) and the Transf heads =
    ``ln_final.weight.shape[0] // 64``. Initialisation follows the original, in its order (the
    ``init_weights`` pass runs before the Transf_cls and Conv_1D modules exist), from torch's
    global RNG.

    ``conv1d_fixed=True`` (Conv_1D only) replaces the original's ``x.view(-1, c, t)`` by a
    proper transpose ``x.permute(0, 2, 1)``; parameters and keys are unchanged.
    """

    def __init__(self, sim_head: str, clip_state_dict, T: int, conv1d_fixed: bool = False):
        super().__init__()
        if sim_head not in SIM_HEADS:
            raise ValueError(f"sim_head must be one of {SIM_HEADS}, got {sim_head!r}")
        if conv1d_fixed and sim_head != "Conv_1D":
            raise ValueError("conv1d_fixed only applies to the Conv_1D head")
        self.sim_header = sim_head
        self.T = T
        self.conv1d_fixed = conv1d_fixed

        if sim_head != "meanP":
            embed_dim = clip_state_dict["text_projection"].shape[1]
            context_length = clip_state_dict["positional_embedding"].shape[0]
            heads = clip_state_dict["ln_final.weight"].shape[0] // 64
            # Created for every head but meanP; read only by Transf.
            self.frame_position_embeddings = nn.Embedding(context_length, embed_dim)
        if sim_head == "Transf":
            self.transformer = TemporalTransformer(width=embed_dim, layers=6, heads=heads)
        if sim_head == "LSTM":
            self.lstm_visual = nn.LSTM(
                input_size=embed_dim,
                hidden_size=embed_dim,
                batch_first=True,
                bidirectional=False,
                num_layers=1,
            )

        self.apply(self._init_weights)

        if sim_head == "Transf_cls":
            self.transformer = TAggregate(clip_length=T, embed_dim=embed_dim, n_layers=6)
        if sim_head == "Conv_1D":
            self.shift = nn.Conv1d(embed_dim, embed_dim, 3, padding=1, groups=embed_dim, bias=False)
            self.shift.weight = nn.Parameter(_conv1d_init_weight(embed_dim))

    @staticmethod
    def _init_weights(module: nn.Module):
        # Linear/Embedding weights ~ N(0, 0.02), Linear biases 0, TF LayerNorms 1/0. MHA's
        # in_proj stays xavier-uniform / 0 and the LSTM keeps torch's U(±1/sqrt(hidden)).
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=0.02)
        elif isinstance(module, TFLayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, t, c = x.shape
        x = x.contiguous()
        head = self.sim_header
        if head == "meanP":
            return x.mean(dim=1)
        if head == "Transf_cls":
            return self.transformer(x).type(x.dtype)

        residual = x
        if head == "Conv_1D":
            if self.conv1d_fixed:
                y = x.permute(0, 2, 1)  # [b, c, t]: a real transpose
            else:
                y = x.view(-1, c, t)  # the original: a reshape of [b, t, c] memory
            y = self.shift(y.float()).permute(0, 2, 1)  # [b, t, c]
        elif head == "Transf":
            positions = torch.arange(t, device=x.device)
            y = x + self.frame_position_embeddings(positions)[None]  # fp16 + fp32 -> fp32
            y = self.transformer(y.permute(1, 0, 2)).permute(1, 0, 2)
        else:  # LSTM
            y, _ = self.lstm_visual(x.float())
            # The original appends x[:, y.size(1):], which is empty: a no-op.
        # Residual to the features WITHOUT the position embeddings, then mean over T.
        return (y.type(residual.dtype) + residual).mean(dim=1)


def make_fusion(
    sim_head: str,
    clip_model,
    T: int,
    seed: int = 0,
    randomize: bool = True,
    conv1d_fixed: bool = False,
) -> VisualPrompt:
    """A ``VisualPrompt`` sized from ``clip_model``, in eval mode.

    With ``randomize`` every parameter gets non-trivial values (``reference.randomize_``), which
    replaces the original's init (including Conv_1D's shift pattern).
    """
    torch.manual_seed(seed)
    fusion = VisualPrompt(sim_head, clip_model.state_dict(), T, conv1d_fixed=conv1d_fixed)
    if randomize:
        reference.randomize_(fusion, seed + 1)
    return fusion.eval()


# ------------------------------------------------------------------------------------------------
# In-network prompt "Shift" (§2.4)
# ------------------------------------------------------------------------------------------------


def temporal_shift_lnd(x: torch.Tensor, n_segment: int, fold_div: int = 8) -> torch.Tensor:
    """TSM shift of a sequence-first ViT activation [1 + HW, N*T, C] (frames batch-major).

    The CLS row is left alone. On the patch rows, with ``fold = C // fold_div``: channels
    ``[0:fold]`` take the NEXT frame (out[t] = x[t+1], last frame 0), channels
    ``[fold:2*fold]`` the PREVIOUS frame (out[t] = x[t-1], first frame 0), the rest pass.
    """
    length, nt, c = x.shape
    grid = int(math.sqrt(length - 1))
    if grid * grid != length - 1:  # the original views the patches as [.., h, w], h = w
        raise ValueError(f"{length - 1} patch tokens do not form a square grid")
    if nt % n_segment:
        raise ValueError(f"batch {nt} is not a multiple of n_segment={n_segment}")
    cls, patches = x[:1], x[1:]
    p = patches.reshape(length - 1, nt // n_segment, n_segment, c)
    fold = c // fold_div
    out = torch.zeros_like(p)
    out[:, :, :-1, :fold] = p[:, :, 1:, :fold]
    out[:, :, 1:, fold : 2 * fold] = p[:, :, :-1, fold : 2 * fold]
    out[:, :, :, 2 * fold :] = p[:, :, :, 2 * fold :]
    return torch.cat((cls, out.reshape(length - 1, nt, c)), dim=0)


class TemporalShiftViT(nn.Module):
    """``TemporalShift_VIT``: shift the block input (residual stream included), then the block."""

    def __init__(self, net: nn.Module, n_segment: int = 3, n_div: int = 8):
        super().__init__()
        self.net = net
        self.n_segment = n_segment
        self.fold_div = n_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(temporal_shift_lnd(x, self.n_segment, self.fold_div))


def wrap_temporal_shift(clip_model, T: int, n_div: int = 8):
    """Wraps every visual residual block in ``TemporalShiftViT`` (in place); returns the model.

    State-dict keys become ``visual.transformer.resblocks.{i}.net.…``; the text tower is untouched.
    """
    blocks = clip_model.visual.transformer.resblocks
    for i in range(len(blocks)):
        if not isinstance(blocks[i], TemporalShiftViT):
            blocks[i] = TemporalShiftViT(blocks[i], n_segment=T, n_div=n_div)
    return clip_model


def shift_state_dict_keys(state_dict) -> dict:
    """``build_model``'s renaming: ``visual.transformer.resblocks.{i}.X`` -> ``….{i}.net.X``."""
    out = OrderedDict()
    prefix = "visual.transformer.resblocks."
    for k, v in state_dict.items():
        if k.startswith(prefix) and ".net." not in k:
            index, rest = k[len(prefix) :].split(".", 1)
            k = f"{prefix}{index}.net.{rest}"
        out[k] = v
    return out


def make_shift_clip(sizes=reference.SMALL, T: int = 8, seed: int = 0):
    """A random-weight reference CLIP with the in-network shift in every visual block."""
    return wrap_temporal_shift(reference.make_reference_clip(sizes, seed), T).eval()


# ------------------------------------------------------------------------------------------------
# Pre-network prompt "Joint" (§2.3), intended semantics
# ------------------------------------------------------------------------------------------------


class JointVisual(reference.reference_clip_module().VisionTransformer):
    """The joint space-time visual tower: [B*T, 3, R, R] -> [B, E] (one embedding per video).

    Built from an existing reference ``VisionTransformer`` (its weights are copied) plus the
    parameter ``time_embedding`` [T, W] ~ ``W**-0.5 * randn`` (from ``seed``). Set it as
    ``clip_model.visual`` so the key is ``visual.time_embedding``. Frames are batch-major
    (frame index = b*T + t), as ``video.view(-1, 3, H, W)`` produces them.
    """

    def __init__(self, visual, T: int, seed: int = 0):
        width = visual.conv1.weight.shape[0]
        super().__init__(
            input_resolution=visual.input_resolution,
            patch_size=visual.conv1.kernel_size[0],
            width=width,
            layers=visual.transformer.layers,
            heads=visual.transformer.resblocks[0].attn.num_heads,
            output_dim=visual.output_dim,
        )
        self.load_state_dict(visual.state_dict())
        self.T = T
        g = torch.Generator().manual_seed(seed)
        self.time_embedding = nn.Parameter(width**-0.5 * torch.randn(T, width, generator=g))
        self.train(visual.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)  # [B*T, W, g, g]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B*T, g², W]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat((cls, x), dim=1) + self.positional_embedding.to(x.dtype)
        T = self.T
        B = x.shape[0] // T
        n, m = x.shape[1] - 1, x.shape[2]
        cls_tokens = x[:B, :1]  # all CLS rows are identical here; the first B stand for the videos
        patches = x[:, 1:].reshape(B, T, n, m).permute(0, 2, 1, 3)  # '(b t) n m -> (b n) t m'
        patches = patches + self.time_embedding.to(x.dtype)  # broadcast over (b, n)
        patches = patches.reshape(B, n * T, m)  # '(b n) t m -> b (n t) m': patch-major
        x = torch.cat((cls_tokens, patches), dim=1)  # [B, 1 + n*T, W]
        x = self.ln_pre(x)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


def make_joint_clip(sizes=reference.SMALL, T: int = 8, seed: int = 0):
    """A random-weight reference CLIP whose visual tower is ``JointVisual`` (eval mode)."""
    model = reference.make_reference_clip(sizes, seed)
    model.visual = JointVisual(model.visual, T, seed=seed + 7)
    return model.eval()


def is_joint(clip_model) -> bool:
    return isinstance(clip_model.visual, JointVisual)


# ------------------------------------------------------------------------------------------------
# Whole model, logits and loss (§2.1, §4)
# ------------------------------------------------------------------------------------------------


class ActionCLIPReference(nn.Module):
    """CLIP + fusion head, wired as in train.py / test.py.

    ``encode_video([B, T, 3, H, W]) -> [B, E]``: frames are flattened batch-major, encoded by
    ``clip_model.encode_image`` (no normalisation), viewed as [B, T, E] and fused. For a joint
    CLIP the visual tower already returns one embedding per video; it is viewed as [B, 1, E]
    before the fusion head, so a ``meanP`` head (the joint config's choice) is the identity.
    (The original's ``view(b, t, -1)`` on that output is one of the reasons Joint never ran.)
    """

    def __init__(self, clip_model, fusion: nn.Module, T: int):
        super().__init__()
        self.clip_model = clip_model
        self.fusion = fusion
        self.T = T

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        if t != self.T:
            raise ValueError(f"expected T={self.T} frames, got {t}")
        frames = video.reshape(b * t, *video.shape[2:])
        feats = self.clip_model.encode_image(frames)
        if is_joint(self.clip_model):
            feats = feats.view(b, 1, -1)
        else:
            feats = feats.view(b, t, -1)
        return self.fusion(feats)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.clip_model.encode_text(tokens)

    def logits(self, video: torch.Tensor, tokens: torch.Tensor):
        """Training logits (``utils/tools.py:create_logits`` with ``exp(logit_scale)``).

        Returns ``(logits_per_image [B, B'], logits_per_text [B', B])``; the second is computed
        as ``s * t̂ @ v̂.T`` like the original, i.e. the transpose of the first.
        """
        v = self.encode_video(video)
        t = self.encode_text(tokens)
        v = v / v.norm(dim=-1, keepdim=True)
        t = t / t.norm(dim=-1, keepdim=True)
        scale = self.clip_model.logit_scale.exp()
        return scale * v @ t.t(), scale * t @ v.t()

    def forward(self, video, tokens):
        return self.logits(video, tokens)


def gen_label(labels) -> np.ndarray:
    """``utils/tools.py:gen_label``: gt[i, k] = 1 where labels[k] == labels[i] (float64)."""
    labels = list(np.asarray(labels).reshape(-1))
    num = len(labels)
    gt = np.zeros((num, num))
    for i, label in enumerate(labels):
        for k in range(num):
            if labels[k] == label:
                gt[i, k] = 1
    return gt


def _kl_loss(prediction: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """``utils/KLLoss.py:KLLoss``: KLDivLoss(mean over all B·B entries) * B = batchmean KL."""
    batch = prediction.shape[0]
    log_p = F.log_softmax(prediction, dim=1)
    q = F.softmax(label * 10, dim=1)
    with warnings.catch_warnings():  # torch warns that 'mean' is not 'batchmean'; it is intended
        warnings.simplefilter("ignore", UserWarning)
        return nn.KLDivLoss(reduction="mean")(log_p, q) * batch


def kl_loss_reference(logits_per_image, logits_per_text, labels) -> float:
    """The training loss: ``(KL(logits_per_image, gt) + KL(logits_per_text, gt)) / 2`` in float64."""
    gt = torch.from_numpy(gen_label(labels))
    li = torch.as_tensor(np.asarray(_to_numpy(logits_per_image), np.float64))
    lt = torch.as_tensor(np.asarray(_to_numpy(logits_per_text), np.float64))
    return float((_kl_loss(li, gt) + _kl_loss(lt, gt)) / 2)


def _to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x)


# ------------------------------------------------------------------------------------------------
# Training checkpoint (utils/saving.py, §8)
# ------------------------------------------------------------------------------------------------


def _adamw_state_dict(clip_model, fusion) -> dict:
    """A real AdamW state dict after one step, with the original's 3 parameter groups.

    The step runs on fp32 copies, so the caller's models are not changed.
    """
    model = copy.deepcopy(clip_model).float()
    fusion = copy.deepcopy(fusion).float()
    lr = 5e-6
    visual_ids = {id(p) for p in model.visual.parameters()}
    text_params = [p for p in model.parameters() if id(p) not in visual_ids]
    optimizer = torch.optim.AdamW(
        [
            {"params": text_params},
            {"params": list(model.visual.parameters()), "lr": lr * 1},
            {"params": list(fusion.parameters()), "lr": lr * 10},
        ],
        betas=(0.9, 0.98),
        lr=lr,
        eps=1e-8,
        weight_decay=0.2,
    )
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = 1e-3 * p.detach() + 1e-4  # any non-trivial gradient will do
    optimizer.step()
    return optimizer.state_dict()


def save_actionclip_checkpoint(
    path,
    clip_model,
    fusion,
    epoch: int = 0,
    fp16: bool = True,
    with_optimizer: bool = True,
) -> dict:
    """Writes an ActionCLIP training checkpoint and returns the dict that was saved.

    Layout: ``{'epoch', 'model_state_dict', 'fusion_model_state_dict', 'optimizer_state_dict'}``.

    * ``model_state_dict``: the un-wrapped CLIP state dict. With ``fp16`` it is taken after
      ``convert_weights`` (on a copy): fp16 conv/linear/attention/``proj``/``text_projection``,
      fp32 LayerNorms, embeddings (incl. ``visual.time_embedding``) and ``logit_scale``. Shift
      models keep their ``.net.`` keys.
    * ``fusion_model_state_dict``: the fusion model wrapped in ``torch.nn.DataParallel`` (on the
      CPU it only wraps), so every key starts with ``module.``; fp32.
    * ``optimizer_state_dict``: ``torch.optim.AdamW(...).state_dict()`` after one step on copies
      (an empty-state AdamW dict when ``with_optimizer`` is false).

    Only tensors and plain Python values: readable with ``torch.load(weights_only=True)``.
    """
    model = copy.deepcopy(clip_model)
    if fp16:
        reference.reference_clip_module().convert_weights(model)
    model_sd = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    wrapped = nn.DataParallel(copy.deepcopy(fusion))
    fusion_sd = OrderedDict((k, v.detach().clone()) for k, v in wrapped.state_dict().items())
    if with_optimizer:
        optimizer_sd = _adamw_state_dict(clip_model, fusion)
    else:
        optimizer_sd = {"state": {}, "param_groups": []}
    checkpoint = {
        "epoch": int(epoch),
        "model_state_dict": model_sd,
        "fusion_model_state_dict": fusion_sd,
        "optimizer_state_dict": optimizer_sd,
    }
    torch.save(checkpoint, str(path))
    return checkpoint


# ------------------------------------------------------------------------------------------------
# Test path (test.py:validate, §7; GroupScale/GroupCenterCrop/Stack/Normalize, §5.5)
# ------------------------------------------------------------------------------------------------


def resize_short_side(img: Image.Image, size: int) -> Image.Image:
    """torchvision 0.9 ``Resize(size)`` on a PIL image with bicubic interpolation."""
    w, h = img.size
    if (w <= h and w == size) or (h <= w and h == size):
        return img
    if w < h:
        ow, oh = size, int(size * h / w)
    else:
        oh, ow = size, int(size * w / h)
    return img.resize((ow, oh), Image.BICUBIC)


def center_crop_box(width: int, height: int, crop: int):
    """torchvision ``CenterCrop``'s box (left, top, right, bottom); Python's round-half-even."""
    if crop > width or crop > height:
        raise ValueError(f"crop {crop} larger than image {width}x{height}")
    top = int(round((height - crop) / 2.0))
    left = int(round((width - crop) / 2.0))
    return left, top, left + crop, top + crop


def preprocess_frames_reference(frames_uint8_thwc, input_size: int = 224) -> torch.Tensor:
    """Val/test transform of ActionCLIP: uint8 [T, H, W, 3] -> float32 [T, 3, S, S].

    Short side to ``input_size * 256 // 224`` (bicubic), centre crop ``input_size``, /255,
    normalise with CLIP's mean/std (float32 throughout, as the original's tensors).
    """
    frames = np.asarray(frames_uint8_thwc)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError("expected uint8 frames [T, H, W, 3]")
    scale_size = input_size * 256 // 224
    out = []
    for frame in frames:
        img = resize_short_side(Image.fromarray(frame, mode="RGB"), scale_size)
        img = img.crop(center_crop_box(img.size[0], img.size[1], input_size))
        out.append(np.asarray(img, dtype=np.uint8))
    stacked = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()  # [T, 3, S, S]
    x = stacked.float().div(255)
    mean = torch.tensor(INPUT_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(INPUT_STD, dtype=torch.float32)[:, None, None]
    return x.sub(mean).div(std)


def tokenize_reference(texts, context_length: int = 77) -> torch.Tensor:
    """ActionCLIP's ``clip.tokenize``: [SOT] + BPE + [EOT], zero-padded; errors if too long."""
    tokenizer = reference.reference_tokenizer()
    if isinstance(texts, str):
        texts = [texts]
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [SOT_ID] + tokenizer.encode(text) + [EOT_ID]
        if len(ids) > context_length:
            raise RuntimeError(f"Input {text} is too long for context length {context_length}")
        result[i, : len(ids)] = torch.tensor(ids)
    return result


def text_prompt_tokens(class_names, templates=ACTIONCLIP_TEMPLATES) -> torch.Tensor:
    """All ``len(templates) * C`` prompts, template-major: [16*C, 77]."""
    return torch.cat(
        [tokenize_reference([tmpl.format(name) for name in class_names]) for tmpl in templates]
    )


def reference_eval_probs(
    clip_model,
    fusion,
    frames_uint8_THWC,
    class_names,
    templates=ACTIONCLIP_TEMPLATES,
    T: int = 8,
    input_size: int = 224,
) -> np.ndarray:
    """The original single-view test path for one video: class probabilities [C] (float32).

    Image side: preprocessing above -> ``encode_image`` -> ``view(1, T, -1)`` -> fusion -> L2
    normalise. Text side: all prompts (template-major) -> ``encode_text`` -> L2 normalise.
    Then ``100 * v @ t.T``, ``view(1, n_templates, C)``, softmax over classes per template and
    the mean over templates. ``input_size`` generalises the 224 crop (resize to
    ``input_size * 256 // 224``) for small test models.
    """
    frames = np.asarray(frames_uint8_THWC)
    if frames.shape[0] != T:
        raise ValueError(f"expected {T} frames, got {frames.shape[0]}")
    video = preprocess_frames_reference(frames, input_size)[None]  # [1, T, 3, S, S]
    tokens = text_prompt_tokens(class_names, templates)
    model = ActionCLIPReference(clip_model, fusion, T)
    was_training = (clip_model.training, fusion.training)
    clip_model.eval()
    fusion.eval()
    try:
        with torch.no_grad():
            text = model.encode_text(tokens)
            v = model.encode_video(video)
            v = v / v.norm(dim=-1, keepdim=True)
            text = text / text.norm(dim=-1, keepdim=True)
            similarity = 100.0 * v @ text.T
            probs = similarity.view(1, len(templates), -1).softmax(dim=-1).mean(dim=1)
    finally:
        clip_model.train(was_training[0])
        fusion.train(was_training[1])
    return probs[0].float().numpy()
