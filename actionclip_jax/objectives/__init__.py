"""Objectives: what a run trains for, and how its model scores a set of classes; chosen once, by name.

An objective is a bundle of functions that the training loop and the evaluators receive, so that
neither contains a branch on what is being trained (big_vision picks its loss by name; scenic
passes `loss_fn` and `metrics_fn` into its steps):

- `loss_fn(params, inputs, rng, context) -> (loss, metrics)`: the loss of one (micro-)batch.
  `inputs` holds `video` (normalised, compute dtype), `label`, `index` and `keys` (one PRNG key per
  sample, keyed by its dataset index, for per-sample draws such as prompt templates); `rng` is the
  batch's key (dropout); `context` the device arrays of `train_context`.
- `train_context(class_names) -> dict`: host arrays the loss reads (prompt tables, ...).
- `class_info(class_names)`: host data that scores those classes (prompt tokens, or the columns of
  a linear layer); raises `ValueError` when the objective cannot score them.
- `classes_fn(params, info)`: that data made device-ready with the current parameters (e.g. the
  class texts encoded), once per evaluation pass.
- `predict_fn(params, video, classes) -> logits [N, K, C]`: per-template logits of N clips.
- `param_groups`: `(name, regex, lr ratio)` rules placed before the optimiser's base groups.
- `frozen`: a regex of parameters the objective never updates (e.g. a text tower whose classifier
  is computed once), added to `optim.freeze`.
- `needs_reference`: the loss reads θ₀, the original CLIP weights (`clip` subtree): the loop
  keeps them on the devices as `context["reference"]`, sharded like the parameters and without
  optimiser state; the plan loads them from `init.clip` or `init.checkpoint` (also when resuming).
- `prepare_context(context, params) -> context`: once, before the first step, with the device
  context and the run's current parameters (e.g. a frozen classifier encoded once).
- `check_class_lists(class_lists)`: once, with every class list the run scores (training, each
  evaluation pass); raises `ValueError` on what none of them needs (FROSTER's descriptions of
  other classes).
- `with_text`, `scores_unseen_classes`, `num_templates`: facts the plan checks and reports.

Adding an objective is one module here (`model_fields(num_classes)` and `make(config, model,
class_names)`) and one entry in `_MODULES`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from actionclip_jax.objectives import (
    class_texts,
    classifier,
    froster,
    video_text,
    weight_interpolation,
)

_MODULES = {
    "video_text": video_text,
    "classifier": classifier,
    "class_texts": class_texts,
    "weight_interpolation": weight_interpolation,
    "froster": froster,
}
NAMES = tuple(_MODULES)


@dataclasses.dataclass(frozen=True, eq=False)
class Objective:
    """See the module docstring. Compared and hashed by identity: one per run."""

    name: str
    loss_fn: Callable
    train_context: Callable[[Sequence[str]], dict]
    class_info: Callable[[Sequence[str]], Any]
    classes_fn: Callable
    predict_fn: Callable
    param_groups: tuple[tuple[str, str, float], ...] = ()
    frozen: str = ""
    needs_reference: bool = False
    prepare_context: Callable[[dict, Any], dict] = lambda context, params: context
    check_class_lists: Callable[[Sequence[Sequence[str]]], None] = lambda class_lists: None
    with_text: bool = True
    scores_unseen_classes: bool = True
    num_templates: int = 0


def _module(name: str):
    if name not in _MODULES:
        raise ValueError(f"model.objective must be one of {NAMES}, got {name!r}")
    return _MODULES[name]


def model_fields(name: str, num_classes: int) -> dict:
    """The model-spec fields the objective `name` needs (`with_text`, `num_classes`)."""
    return _module(name).model_fields(num_classes)


def make(config, model, class_names: Sequence[str]) -> Objective:
    """The objective `config.model.objective` for `model`, trained on `class_names`."""
    return _module(config.model.objective).make(config, model, tuple(class_names))
