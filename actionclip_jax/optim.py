"""The original recipe's optimiser: AdamW with three learning-rate groups chosen by regex.

Groups (first matching regex wins, matched against '/'-joined parameter paths):
- `fusion/.*`: the temporal head, lr × `fusion_ratio` (the original's `f_ratio` = 10);
- `classifier/.*`: the unimodal baseline's linear layer (`model.objective=classifier`), also
  lr × `fusion_ratio`: like the temporal head it is a new layer on top of pretrained towers (the
  original has no such layer, so no ratio of its own); present only when the model has it;
- `clip/visual/.*`: the image tower, lr × `visual_ratio` (the original's `ratio` = 1);
- everything else (text tower, logit scale): lr.
Parameters matching `freeze` get no update. Schedule: linear warm-up from 0, then cosine to 0,
evaluated every step (the original steps it every 10 iterations).
"""

import re

import jax
import optax

GROUPS = (
    ("fusion", r"fusion/.*"),
    ("classifier", r"classifier/.*"),
    ("visual", r"clip/visual/.*"),
    ("text", r".*"),
)


def param_paths(params):
    """`'/'`-joined path of every leaf, as a tree of strings."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "/".join(str(getattr(k, "key", k)) for k in path), params
    )


def group_labels(params, freeze: str = ""):
    """The optimiser group of every parameter ('frozen' where `freeze` matches)."""
    frozen = re.compile(freeze) if freeze else None

    def label(path):
        if frozen is not None and frozen.fullmatch(path):
            return "frozen"
        return next(name for name, rx in GROUPS if re.fullmatch(rx, path))

    return jax.tree.map(label, param_paths(params))


def lr_schedule(base_lr: float, steps_per_epoch: int, warmup_epochs: float, epochs: float):
    """lr(step): linear 0 → base over the warm-up epochs, then cosine to 0 at the last epoch."""
    warmup = int(round(warmup_epochs * steps_per_epoch))
    total = int(round(epochs * steps_per_epoch))
    return optax.schedules.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=base_lr,
        warmup_steps=max(warmup, 1) if warmup else 0,
        decay_steps=max(total, warmup + 1),
        end_value=0.0,
    )


def make_optimizer(optim_cfg, params, steps_per_epoch: int):
    """Returns `(tx, schedules)`: the optax transformation and the lr schedule per group.

    `schedules` has the text, visual and fusion groups, and `classifier` when a parameter falls
    in it (a classifier has no text tower: its schedules leave out the empty text group).
    """
    labels = group_labels(params, optim_cfg.freeze)
    present = set(jax.tree.leaves(group_labels(params)))
    ratios = {"text": 1.0, "visual": optim_cfg.visual_ratio, "fusion": optim_cfg.fusion_ratio}
    if "classifier" in present:
        ratios["classifier"] = optim_cfg.fusion_ratio
        if "text" not in present:
            del ratios["text"]
    schedules = {
        name: lr_schedule(
            optim_cfg.lr * r, steps_per_epoch, optim_cfg.warmup_epochs, optim_cfg.epochs
        )
        for name, r in ratios.items()
    }

    def adamw(schedule):
        return optax.adamw(
            schedule,
            b1=optim_cfg.b1,
            b2=optim_cfg.b2,
            eps=optim_cfg.eps,
            weight_decay=optim_cfg.weight_decay,
        )

    transforms = {name: adamw(s) for name, s in schedules.items()}
    transforms["frozen"] = optax.set_to_zero()
    tx = optax.multi_transform(transforms, labels)
    if optim_cfg.clip_grad_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(optim_cfg.clip_grad_norm), tx)
    return tx, schedules
