"""Cross-entropy over all class texts: ViFi-CLIP's objective, and the base of Open-VCLIP's.

Every video is scored against every training class: `exp(logit_scale) · v · Wᵀ`, where W `[C, E]`
is the prompt-ensemble classifier of the class names (`scoring.ensemble_classifier`: each template
encoded and normalised, the mean over templates normalised again; one template is plain CLIP
scoring) and v the model's `video_embedding` (normalised, or Open-VCLIP's un-normalised mean of
normalised frame features). The loss is the cross-entropy against soft targets: one-hot with
label smoothing (`loss.label_smoothing`), optionally blended by Mixup / CutMix
(`loss.mixup_alpha`, `loss.cutmix_alpha`, `loss.mix_switch_prob`; ViFi-CLIP uses 0.8 / 1.0 / 0.5
with smoothing 0.1).

The classifier (`text.classifier`):
- `trained`: recomputed from the current text tower at every step, with gradients (ViFi-CLIP:
  its one template over all classes, as the original encodes all class prompts per forward);
  with `text.train_templates=n` > 0, from n templates drawn at random each step (FROSTER's
  training draws its text prompts that way), else from all of them;
- `frozen`: encoded once, from the run's weights, before the first step (Open-VCLIP: computed
  when the model is built, never refreshed); the text tower is then never updated (`frozen`).

Scoring at evaluation is the same classifier for the pass's classes, at the learned scale, one
"template" (K = 1): the view reduction (`eval.view_reduce`) does the rest.

`interpolation` turns this into Open-VCLIP's objective (`weight_interpolation`): see `bundle`.
"""

import jax
import jax.numpy as jnp

from actionclip_jax import augment, losses, prompts, scoring

# The text tower's parameters (everything of CLIP's but the image tower and the logit scale).
TEXT_TOWER = (
    r"clip/(token_embedding|positional_embedding|transformer|ln_final|text_projection)(/.*)?"
)
CLASSIFIERS = ("trained", "frozen")


def model_fields(num_classes: int) -> dict:
    del num_classes  # text scores any class: no layer per class
    return {"with_text": True, "num_classes": 0}


def make(config, model, class_names):
    return bundle(model, num_classes=len(class_names), **options(config))


def options(config) -> dict:
    """`bundle`'s keyword arguments from the config (the text, loss and mixing fields)."""
    t, l = config.text, config.loss
    if t.classifier not in CLASSIFIERS:
        raise ValueError(f"text.classifier must be one of {CLASSIFIERS}, got {t.classifier!r}")
    mix = None
    if l.mixup_alpha > 0 or l.cutmix_alpha > 0:
        mix = dict(mixup_alpha=l.mixup_alpha, cutmix_alpha=l.cutmix_alpha,
                   switch_prob=l.mix_switch_prob)  # fmt: skip
    return dict(
        templates=prompts.resolve_templates(t.templates),
        name_style=t.class_names,
        frozen=t.classifier == "frozen",
        train_templates=int(t.train_templates),
        smoothing=float(l.label_smoothing),
        mix=mix,
    )


def interpolate(params, reference, alpha):
    """`params` with every leaf of `reference` moved to `alpha·θ₀ + (1 − alpha)·θ`.

    The move is added under `stop_gradient`: the gradient of a loss at the moved point flows to θ
    with the identity, i.e. it is the gradient with respect to the interpolated weights, without
    the chain rule's (1 − alpha) factor, as Open-VCLIP takes it (it keeps the gradients of the
    interpolated model and adds them to θ's).

    Args:
      params: the model's parameters, `{"clip": ..., ...}`.
      reference: θ₀ of the `clip` subtree (same structure as `params["clip"]`).
      alpha: scalar in [0, 1].
    """
    moved = jax.tree.map(
        lambda p, r: p + jax.lax.stop_gradient(alpha * (r.astype(p.dtype) - p)),
        params["clip"],
        reference,
    )
    return {**params, "clip": moved}


def bundle(
    model,
    *,
    templates=prompts.VIFICLIP_TEMPLATES,
    name_style: str = "verbatim",
    frozen: bool = False,
    train_templates: int = 0,
    smoothing: float = 0.0,
    mix: dict | None = None,
    num_classes: int | None = None,
    interpolation: tuple[float, float, float] | None = None,
    name: str = "class_texts",
):
    """The objective for `model` (also `predict`'s scorer of ViFi-CLIP / Open-VCLIP checkpoints).

    Args:
      model: the video model (`models.actionclip.ActionCLIP`).
      templates: the prompt templates the classifier averages.
      name_style: how class names are written (`prompts.CLASS_NAME_STYLES`).
      frozen: the classifier is encoded once and the text tower never trained (module docstring).
      train_templates: a trained classifier's templates per step, drawn at random (0: all).
      smoothing: label smoothing of the targets.
      mix: `augment.mix_videos` keyword arguments, or None for no Mixup / CutMix.
      num_classes: the training classes' count (None: a scorer that never trains).
      interpolation: `(alpha_low, alpha_high, weight)`: Open-VCLIP's interpolated weight
        optimisation. Each step also takes the loss at `alpha·θ₀ + (1 − alpha)·θ` (θ₀ =
        `context["reference"]`, alpha ~ U(low, high), one draw per (micro-)batch) with that
        weight, its gradient w.r.t. the interpolated weights (`interpolate`), on the same
        batch; the classifier of a frozen text side is the precomputed one at both points.
      name: recorded as the objective's name.
    """
    from actionclip_jax.objectives import Objective  # pylint: disable=import-outside-toplevel

    context_length = model.clip_sizes["context_length"]
    encode = scoring.text_encoder(model)

    def class_info(names):  # [K, C, L]
        return prompts.prompt_tokens(prompts.styled_names(names, name_style), templates,
                                     context_length)  # fmt: skip

    def classes_fn(params, table):  # [1, C, E]: one "template", the ensemble
        return scoring.ensemble_classifier(scoring.encode_class_texts(encode, params, table))[None]

    def train_context(names):
        return {"text_table": class_info(names)}

    def prepare_context(context, params):
        if not frozen:
            return context
        # Encoded once; the token table is not needed on the devices any more.
        rest = {k: v for k, v in context.items() if k != "text_table"}
        return {**rest, "classifier": classes_fn(params, context["text_table"])[0]}

    def classifier(params, context, key):  # [C, E]
        if frozen:
            return context["classifier"]
        table = context["text_table"]  # [K, C, L]
        if 0 < train_templates < table.shape[0]:
            drawn = jax.random.choice(key, table.shape[0], (train_templates,), replace=False)
            table = table[drawn]  # [n, C, L]
        k, c, l = table.shape
        feats = model.apply({"params": params}, table.reshape(k * c, l), method=model.encode_text)
        return scoring.ensemble_classifier(feats.reshape(k, c, -1))

    def logits(params, video, weights, train=False, rng=None):  # [B, C]
        rngs = {"dropout": rng} if rng is not None else {}
        v = model.apply({"params": params}, video, train=train, rngs=rngs,
                        method=model.video_embedding)  # fmt: skip
        return jnp.exp(params["clip"]["logit_scale"]) * v @ weights.T

    def loss_fn(params, inputs, rng, context):
        if num_classes is None:
            raise ValueError(f"the {name} scorer was made without training classes")
        k_mix, k_drop, k_alpha, k_text = jax.random.split(rng, 4)
        video = inputs["video"]
        targets = losses.smooth_labels(inputs["label"], num_classes, smoothing)  # [B, C]
        if mix is not None:
            video, targets = augment.mix_videos(video, targets, k_mix, **mix)

        def ce(p):
            return losses.soft_cross_entropy(
                logits(p, video, classifier(p, context, k_text), True, k_drop), targets
            )

        loss = ce(params)
        metrics = {"logit_scale": jnp.exp(params["clip"]["logit_scale"])}
        if interpolation is not None:
            low, high, weight = interpolation
            alpha = jax.random.uniform(k_alpha, (), jnp.float32, low, high)
            loss_at_alpha = ce(interpolate(params, context["reference"], alpha))
            metrics.update(loss_plain=loss, loss_interpolated=loss_at_alpha, alpha=alpha)
            loss = loss + weight * loss_at_alpha
        return loss, metrics

    def predict_fn(params, video, weights):  # weights [1, C, E] → logits [N, 1, C]
        return logits(params, video, weights[0])[:, None]

    return Objective(
        name=name,
        loss_fn=loss_fn,
        train_context=train_context,
        class_info=class_info,
        classes_fn=classes_fn,
        predict_fn=predict_fn,
        frozen=TEXT_TOWER if frozen else "",
        needs_reference=interpolation is not None,
        prepare_context=prepare_context,
        with_text=True,
        scores_unseen_classes=True,
        num_templates=len(templates),
    )
