"""The original recipe's optimiser: AdamW with learning-rate groups chosen by regex.

Groups (first matching regex wins, matched against '/'-joined parameter paths): first those the
objective adds (`Objective.param_groups`, e.g. the unimodal baseline's linear layer), then
- `fusion/.*`: the temporal head, lr × `fusion_ratio` (the original's `f_ratio` = 10);
- `clip/visual/.*`: the image tower, lr × `visual_ratio` (the original's `ratio` = 1);
- everything else (text tower, logit scale): lr; this group is left out when nothing falls in it
  (a model without text tower).
On top of its group's ratio, a parameter may take a multiplier from `lr_mults`, `(regex,
multiplier)` pairs (first match wins), as big_vision's `lr_mults`: a from-scratch run can speed
up tables such as position embeddings, which Adam otherwise moves by about lr per step whatever
their scale. Such parameters form groups of their own, named `<group>_x<multiplier>`.
Parameters matching `freeze` (or the objective's `frozen`) get no update. Schedule: linear
warm-up from `warmup_start_ratio` × lr (0), then cosine to `end_lr_ratio` × lr (0), evaluated
every step (the original steps it every 10 iterations). Weight decay applies to every parameter,
or (`weight_decay_1d=False`, Open-VCLIP's rule) to all but the 1-D ones (biases, LayerNorms,
class embedding; the 0-d logit scale keeps it).
"""

import re

import jax
import optax

GROUPS = (
    ("fusion", r"fusion/.*"),
    ("visual", r"clip/visual/.*"),
    ("text", r".*"),
)


def param_paths(params):
    """`'/'`-joined path of every leaf, as a tree of strings."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "/".join(str(getattr(k, "key", k)) for k in path), params
    )


def _check_lr_mults(lr_mults, paths):
    for item in lr_mults:
        if len(item) != 2 or not isinstance(item[0], str) or not float(item[1]) > 0:
            raise ValueError(
                f"optim.lr_mults takes (regex, multiplier > 0) pairs, got {item!r}; e.g. "
                "(('clip/visual/positional_embedding', 30.0),)"
            )
        if not any(re.fullmatch(item[0], p) for p in paths):
            raise ValueError(
                f"optim.lr_mults regex {item[0]!r} matches no parameter; parameter paths look "
                f"like {sorted(paths)[:3]}"
            )


def group_labels(params, freeze: str = "", lr_mults=(), extra_groups=(), frozen: str = ""):
    """The optimiser group of every parameter ('frozen' where `freeze` or `frozen` matches).

    `extra_groups` are `(name, regex, ratio)` rules tried before `GROUPS`. A parameter that one
    of `lr_mults` matches is labelled `<group>_x<multiplier>`.
    """
    freeze = "|".join(f"(?:{rx})" for rx in (freeze, frozen) if rx)
    frozen = re.compile(freeze) if freeze else None
    paths = param_paths(params)
    _check_lr_mults(lr_mults, jax.tree.leaves(paths))
    groups = [(name, rx) for name, rx, _ in extra_groups] + list(GROUPS)

    def label(path):
        if frozen is not None and frozen.fullmatch(path):
            return "frozen"
        group = next(name for name, rx in groups if re.fullmatch(rx, path))
        mult = next((float(m) for rx, m in lr_mults if re.fullmatch(rx, path)), None)
        return group if mult is None else f"{group}_x{mult:g}"

    return jax.tree.map(label, paths)


def lr_schedule(
    base_lr: float,
    steps_per_epoch: int,
    warmup_epochs: float,
    epochs: float,
    start_ratio: float = 0.0,
    end_ratio: float = 0.0,
):
    """lr(step): linear start → base over the warm-up epochs, then cosine to end at the last
    epoch (start, end = the ratios × base)."""
    warmup = int(round(warmup_epochs * steps_per_epoch))
    total = int(round(epochs * steps_per_epoch))
    return optax.schedules.warmup_cosine_decay_schedule(
        init_value=base_lr * start_ratio,
        peak_value=base_lr,
        warmup_steps=max(warmup, 1) if warmup else 0,
        decay_steps=max(total, warmup + 1),
        end_value=base_lr * end_ratio,
    )


def _no_decay_1d(params):
    """The weight-decay mask of Open-VCLIP's rule: every parameter but the 1-D ones."""
    return jax.tree.map(lambda p: p.ndim != 1, params)


def make_optimizer(optim_cfg, params, steps_per_epoch: int, extra_groups=(), frozen: str = ""):
    """Returns `(tx, schedules)`: the optax transformation and the lr schedule per group.

    `schedules` has the visual and fusion groups, the text group unless it is empty, each of
    `extra_groups` (`(name, regex, lr ratio)`) that holds a parameter, and one
    `<group>_x<multiplier>` group for each multiplier of `lr_mults` in use. `frozen`: a regex of
    parameters the objective never updates (`Objective.frozen`), beside `optim.freeze`.
    """
    labels = group_labels(params, optim_cfg.freeze, optim_cfg.lr_mults, extra_groups, frozen)
    present = set(jax.tree.leaves(group_labels(params, extra_groups=extra_groups)))
    ratios = {name: float(r) for name, _, r in extra_groups if name in present}
    ratios.update(text=1.0, visual=optim_cfg.visual_ratio, fusion=optim_cfg.fusion_ratio)
    if "text" not in present:
        del ratios["text"]
    for name in set(jax.tree.leaves(labels)) - set(ratios) - {"frozen"}:
        group, mult = name.rsplit("_x", 1)
        ratios[name] = ratios[group] * float(mult)
    schedules = {
        name: lr_schedule(
            optim_cfg.lr * r,
            steps_per_epoch,
            optim_cfg.warmup_epochs,
            optim_cfg.epochs,
            optim_cfg.warmup_start_ratio,
            optim_cfg.end_lr_ratio,
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
            mask=None if optim_cfg.weight_decay_1d else _no_decay_1d,
        )

    transforms = {name: adamw(s) for name, s in schedules.items()}
    transforms["frozen"] = optax.set_to_zero()
    tx = optax.multi_transform(transforms, labels)
    if optim_cfg.clip_grad_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(optim_cfg.clip_grad_norm), tx)
    return tx, schedules
