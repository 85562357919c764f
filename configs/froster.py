r"""FROSTER (ICLR 2024): Open-VCLIP's student, its text side trained, kept close to a frozen CLIP
teacher by distillation of frame and class-text features; SWA, no interpolation back to CLIP.
The argument picks the run (default `k400`):

  # ViT-B/16, 8 frames, Kinetics-400, 22 epochs, batch 64 (published, 3-split means: UCF101
  # 84.8, HMDB51 54.8, K600 74.8; full sets UCF* 85.0, HMDB* 54.5):
  python -m actionclip_jax.main --config=configs/froster.py:k400 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.text.descriptions=k400_descriptions.json
  # Zero-shot, of a trained run (its --workdir: epochs 2-22 averaged):
  python -m actionclip_jax.main --config=configs/froster.py:zero_shot,ucf101 --workdir=DIR \
      --config.data.root=data/ucf101/videos --config.text.descriptions=ucf101_descriptions.json
  # ... or of FROSTER's released weights (`released`; their file name here is a placeholder):
  python -m actionclip_jax.main --config=configs/froster.py:zero_shot,ucf101,released \
      --workdir=NEW_DIR --config.init.checkpoint=froster_k400.pth \
      --config.data.root=data/ucf101/videos --config.text.descriptions=ucf101_descriptions.json
  python -m actionclip_jax.main --config=configs/froster.py:zero_shot,ucf101,full ...
  python -m actionclip_jax.main --config=configs/froster.py:zero_shot,hmdb51[,full] ...
  python -m actionclip_jax.main --config=configs/froster.py:zero_shot,k600 ...
  # Base-to-novel (published HM: K400 70.4, HMDB51 65.1, UCF101 87.0):
  python -m actionclip_jax.main --config=configs/froster.py:base2novel,k400,s1 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/k400
  # The demo's synthetic data, from scratch (docs/benchmarks.md, "Demo accuracy"; no FROSTER
  # numbers there yet):
  python -m actionclip_jax.main --config=configs/froster.py:demo --workdir=/tmp/froster_demo

What makes it FROSTER (docs/recipes.md, "FROSTER", has the details, every published number beside
its config, the deviations and what is not measured yet; the facts: OPEN_VOCAB.md section 3):
Open-VCLIP's student (`frame_stage=neighbour`, `head=mean_logits`, CLIP pixels, its evaluation
views) without IWO and without interpolation back to CLIP; `model.objective=froster`:
cross-entropy over all class texts plus 2.0 × the distillation of the student's normalised
per-frame features and class-text features, each through a residual projector (f + 0.1 · MLP(f),
second layer zero-initialised), towards those of the frozen original CLIP (θ₀: `init.clip`, else
`init.checkpoint`; no optimiser state, run under `stop_gradient`); `loss.distill_form=cosine`
(1 − mean cosine) or `l2` (mean L2 distance, the original's before 2024-11-25): which one gave
the published numbers is unconfirmed. The text tower trained, its classifier drawn per step from
the bare class text and 1 of Open-VCLIP's 28 templates (`text.templates=froster29`,
`text.train_templates=1`), all 29 averaged at evaluation; class texts "Name: description" from
`text.descriptions` (format: actionclip_jax/descriptions.py; FROSTER's own were written by a
language model and are not shipped; without a file the plain class names). Optimiser and schedule
as Open-VCLIP's (AdamW (0.9, 0.999), weight decay 0.01 except on 1-D parameters, lr 3.33e-6,
warm-up 2 epochs from lr/100, cosine to lr/100, gradient norm clipped at 1), the projectors at
the same lr (`optim.projector_ratio=1`). Every epoch's checkpoint kept, epochs 2-22 averaged for
the final evaluation.

The descriptions file must describe exactly the classes a run scores (training classes and every
evaluation split's): for `zero_shot,k600`, the classes of its three splits (`python -m
actionclip_jax.descriptions --input=FILE --labels=kinetics600_zero_shot_split1 --labels=...2
--labels=...3 --output=NEW.json`). FROSTER evaluates K600 on its val videos only (derive the
lists as configs/openvclip.py says).

Base-to-novel follows FROSTER's scripts (12 epochs, batch 32, 64 for UCF101); its test scripts
load a weight average named `swa_2_22` from these 12-epoch runs, assumed here to be epochs 2-12.
"""

from configs import base, openvclip, zero_shot


def recipe(config, train: bool = True):
    """FROSTER's model, text side, loss, weight space and evaluation on top of a config."""
    config = openvclip.recipe(config, train=train)  # the student and its evaluation
    config.model.objective = "froster"
    config.text.templates = "froster29"
    config.text.classifier = "trained"
    config.text.train_templates = 1
    config.weight_space.interpolate = 0.0
    if train:
        config.loss.distill_weight = 2.0
        config.loss.distill_form = "cosine"
        config.optim.projector_ratio = 1.0
    return config


def _k400():
    config = recipe(base.get_config())
    config.init.checkpoint = "ViT-B-16.pt"
    config.data.train = "data/k400/train.txt"
    config.data.val = "data/k400/val.txt"
    config.data.root = "data/k400"
    config.data.labels = "kinetics400"
    config.data.batch_size = 64  # 32 before the original's commit 01003e5 (2024-11-26)
    config.optim.lr = 3.33e-6
    config.optim.epochs = 22
    config.optim.warmup_epochs = 2
    config.weight_space.average_epochs = (2, 22)
    return config


def _zero_shot(dataset, full=False, released=False):
    config = recipe(zero_shot.get_config(dataset), train=False)
    config.data.eval_batch_size = 32
    if released:  # a released FROSTER file, as it is (its projectors are not weights)
        config.init.checkpoint = "froster_k400.pth"
    else:  # a run's --workdir: its epochs 2-22 averaged
        config.init.checkpoint = ""
        config.weight_space.average_epochs = (2, 22)
    if full:
        if dataset == "k600":
            raise ValueError("froster: zero_shot,k600 has no full list (three class splits)")
        config.eval.splits = ()
        config.data.val = f"data/{dataset}/{dataset}_full.txt"
    return config


def _demo():
    from configs import demo  # pylint: disable=import-outside-toplevel

    config = recipe(demo.get_config())
    config.data.num_frames = 4  # the demo's budget (configs/demo.py)
    config.data.eval_stride = 4  # a 16-frame window of the 32-frame clips
    config.data.eval_scale_size = 32
    # As configs/openvclip.py:demo: the last third of the 36 epochs averaged. The teacher is θ₀,
    # here the run's own random initial weights (the demo has no pretrained CLIP).
    config.weight_space.average_epochs = (25, 36)
    return config


def get_config(arg=None):
    return openvclip.select_run(arg, "froster", recipe, _k400, _demo, _zero_shot)
