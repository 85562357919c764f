r"""ViFi-CLIP (CVPR 2023): CLIP fine-tuned end to end on videos, frame features averaged, trained
with cross-entropy over all class texts. The argument picks the run (default `k400`):

  # The zero-shot model: ViT-B/16, 32 frames, Kinetics-400, 10 epochs (published: zero-shot
  # HMDB51 51.3, UCF101 76.8, K600 71.2).
  python -m actionclip_jax.main --config=configs/vificlip.py:k400 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt
  # Zero-shot evaluation of a trained run (its --workdir) or of the released file:
  python -m actionclip_jax.main --config=configs/vificlip.py:zero_shot,ucf101 --workdir=DIR \
      --config.init.checkpoint=vifi_clip_10_epochs_k400_full_finetuned.pth \
      --config.init.clip=ViT-B-16.pt --config.data.root=data/ucf101/videos
  python -m actionclip_jax.main --config=configs/vificlip.py:zero_shot,hmdb51 --workdir=DIR ...
  python -m actionclip_jax.main --config=configs/vificlip.py:zero_shot,k600 --workdir=DIR ...
  # Base-to-novel (16 shots of the base classes, one run per draw s1..s3) and few-shot (K shots):
  python -m actionclip_jax.main --config=configs/vificlip.py:base2novel,hmdb51,s1 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/hmdb51/videos
  python -m actionclip_jax.main --config=configs/vificlip.py:few_shot,ucf101,2 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/ucf101/videos
  # The demo's synthetic data, from scratch (beside configs/demo.py, docs/benchmarks.md):
  python -m actionclip_jax.main --config=configs/vificlip.py:demo --workdir=/tmp/vificlip_demo

What makes it ViFi-CLIP (OPEN_VOCAB.md section 1): no frame stage, `meanP` pooling, the one
template "a photo of a {}." over the class names as they are, the classifier recomputed with
gradients at every step (text tower trained, its token embedding frozen: ViFi-CLIP's files do not
even hold it), soft-target cross-entropy with label smoothing 0.1 and Mixup 0.8 / CutMix 1.0
(switch 0.5), ImageNet pixel normalisation, AdamW (0.9, 0.98) with weight decay 0.001 on every
parameter, warm-up 5 epochs from 0 then cosine to lr/100; evaluation 1 view, 32 frames (TSN
centres, short side 256, centre crop), softmax summed over views.

`zero_shot,<ucf101|hmdb51>[,full]`: all classes on the three official test splits (mean ± std),
or with `full` the whole data set in one list (`data.val`; derive it with `python -m
actionclip_jax.splits full`). `zero_shot,k600`: ViFi-CLIP's three 160-class splits (its lists
take videos from K600 train, test and val; shipped). ViFi-CLIP's released K400 file lacks the
token embedding: `init.clip` names the OpenAI file it is taken from.

Deviations (docs/recipes.md): bf16 compute with fp32 weights instead of apex O1 (fp16); Mixup /
CutMix partners drawn across the (micro-)batch rather than within each GPU's 4 videos;
`optim.grad_accum` splits the global batch 256 as memory requires.
"""

from configs import base, base2novel, few_shot, zero_shot

RUNS = ("k400", "zero_shot", "base2novel", "few_shot", "demo")


def recipe(config, train: bool = True):
    """ViFi-CLIP's model, text side, loss and evaluation on top of a config."""
    config.model.objective = "class_texts"
    config.model.frame_stage = "none"
    config.model.head = "meanP"
    config.text.templates = "vificlip"
    config.text.class_names = "verbatim"
    config.text.classifier = "trained"
    config.data.pixel_norm = "imagenet"
    config.data.num_frames = 32
    config.data.randaug_n = 0  # ViFi-CLIP has no RandAugment
    config.eval.view_reduce = "softmax_sum"
    config.eval.half_class_subsets = 0  # ViFi-CLIP reports full class sets only
    if train:
        config.loss.label_smoothing = 0.1
        config.loss.mixup_alpha = 0.8
        config.loss.cutmix_alpha = 1.0
        config.loss.mix_switch_prob = 0.5
        config.optim.freeze = "clip/token_embedding/.*"
        config.optim.b1, config.optim.b2, config.optim.eps = 0.9, 0.98, 1e-8
        config.optim.weight_decay = 0.001
        config.optim.end_lr_ratio = 0.01
        config.optim.fusion_ratio = 1.0  # meanP has no parameters
    return config


def _k400():
    config = recipe(base.get_config())
    config.init.checkpoint = "ViT-B-16.pt"
    config.data.train = "data/k400/train.txt"
    config.data.val = "data/k400/val.txt"
    config.data.root = "data/k400"
    config.data.labels = "kinetics400"
    config.data.batch_size = 256  # 4 a GPU × accumulation × 8 GPUs
    config.optim.lr = 8e-6
    config.optim.epochs = 10
    config.optim.warmup_epochs = 5
    return config


def _zero_shot(dataset, full=False):
    config = recipe(zero_shot.get_config(dataset), train=False)
    config.init.checkpoint = "vifi_clip_10_epochs_k400_full_finetuned.pth"
    config.init.clip = "ViT-B-16.pt"  # the token embedding ViFi-CLIP's file leaves out
    config.data.eval_batch_size = 16
    if full:
        if dataset == "k600":
            raise ValueError("vificlip: zero_shot,k600 has no full list (three class splits)")
        config.eval.splits = ()  # one pass over data.val, the whole data set
        config.data.val = f"data/{dataset}/{dataset}_full.txt"
    return config


def _demo():
    from configs import demo  # pylint: disable=import-outside-toplevel

    config = recipe(demo.get_config())
    config.data.num_frames = 4  # the demo's budget (configs/demo.py)
    # The demo's own optimiser (from scratch) stays: only what defines the recipe changes.
    config.optim.freeze = ""  # from scratch: the token embedding must learn too
    config.optim.b2, config.optim.weight_decay = 0.98, 0.05
    config.optim.end_lr_ratio = 0.0
    return config


def get_config(arg=None):
    name, *rest = (arg or "k400").split(",")
    if name not in RUNS:
        raise ValueError(f"vificlip: the run must be one of {RUNS}, got {name!r}")
    if name == "k400":
        return _k400()
    if name == "demo":
        return _demo()
    if name == "zero_shot":
        dataset = rest[0] if rest else "ucf101"
        return _zero_shot(dataset, full=rest[1:] == ["full"])
    if name == "base2novel":
        config = recipe(base2novel.get_config(",".join(rest) or None))
        config.data.batch_size = 64
        config.optim.lr, config.optim.epochs = 2e-6, 11
        config.optim.warmup_epochs = 5
        return config
    config = recipe(few_shot.get_config(",".join(rest) or None))
    config.data.batch_size = 64
    config.optim.lr, config.optim.epochs = 2e-6, 50
    config.optim.warmup_epochs = 5
    # The maintainer reports the mean over the three test splits (issue #11).
    config.eval.splits = tuple(f"{config.data.labels}/val{i}" for i in (1, 2, 3))
    return config
