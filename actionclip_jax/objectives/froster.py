"""FROSTER (ICLR 2024): Open-VCLIP's student kept close to a frozen CLIP teacher by distillation.

The student is the run's model (FROSTER's: Open-VCLIP's neighbour-frame attention and mean of
per-frame logits). Each step the loss is

  CE(exp(s) · v · W_sᵀ, y) + w · (D(P_v(f̂), f̂₀) + D(P_t(W_s), W₀))

- `W_s` `[C, E]`: the student's prompt-ensemble classifier of the training classes, encoded with
  gradients (the text tower trains) from the templates drawn for the step: every bare template
  ("{}": the class text alone) and `text.train_templates` of the others at random (FROSTER: the
  bare one and 1 of Open-VCLIP's 28, re-drawn every step; evaluation averages all 29);
- `f̂` `[B·T, E]`: the student's normalised per-frame features, `v` the video embedding from them
  (the head's; FROSTER's: their mean), `s` the learned logit scale;
- the teacher: the same CLIP without temporal modelling (`frame_stage=none`) at θ₀, the original
  weights, which the loop holds on the devices as `context["reference"]` (sharded like the
  parameters, no optimiser state; `needs_reference`), run under `stop_gradient`: `f̂₀` its
  normalised per-frame features of the same clips, `W₀` its classifier of the same drawn
  templates. A frozen text tower gives every template the same features every step, so they are
  encoded once, before the first step (`prepare_context`), and each step averages the drawn ones;
- `P_v`, `P_t`: the residual projectors `f + 0.1 · MLP(f)` (`models/projector.py`), trainable
  parameters of the model (`projector_v`, `projector_t`; optimiser group `projectors` at lr ×
  `optim.projector_ratio`); scoring never uses them;
- `D` (`loss.distill_form`): `cosine`, `1 − mean cos(s, t)`, the original's loss since commit
  4a86ec1 (2024-11-25); or `l2`, `mean ‖s − t‖₂` (not squared), what it computed before. Which one
  produced the paper's numbers and released weights is not known (OPEN_VOCAB.md, section 3.2).
  `w` = `loss.distill_weight` (2.0).

Class texts (`actionclip_jax.descriptions`): with `text.descriptions` (a JSON file of
"Name: description" strings by class name) the templated texts are `template.format(Name) + " "
+ string` and the bare one the string; without, the plain class names (`text.class_names`).

Scoring is `class_texts`'s: the ensemble of all templates at the learned scale, one "template"
(K = 1) for the view reduction. Label smoothing and Mixup / CutMix (`loss.*`) apply as in
`class_texts` (FROSTER uses neither); mixed clips reach the teacher too.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from actionclip_jax import augment, losses, prompts, scoring
from actionclip_jax import descriptions as descriptions_lib
from actionclip_jax.models.clip import l2_normalize

DISTILL_FORMS = ("cosine", "l2")
PROJECTORS = r"projector_(v|t)/.*"


def model_fields(num_classes: int) -> dict:
    del num_classes  # text scores any class
    return {"with_text": True, "num_classes": 0, "projectors": True}


def make(config, model, class_names):
    t, lo = config.text, config.loss
    if t.classifier != "trained":
        raise ValueError(
            f"FROSTER trains its text side: text.classifier must be 'trained', got {t.classifier!r}"
        )
    if model.frame_stage == "joint":
        raise ValueError(
            "FROSTER distils per-frame features; model.frame_stage=joint pools time inside the "
            "ViT (use neighbour, FROSTER's, or none / shift)"
        )
    if lo.distill_form not in DISTILL_FORMS:
        raise ValueError(f"loss.distill_form must be one of {DISTILL_FORMS}, got "
                         f"{lo.distill_form!r}")  # fmt: skip
    descriptions = None
    if t.descriptions:
        descriptions = descriptions_lib.read_descriptions(t.descriptions)
    mix = None
    if lo.mixup_alpha > 0 or lo.cutmix_alpha > 0:
        mix = {"mixup_alpha": lo.mixup_alpha, "cutmix_alpha": lo.cutmix_alpha,
               "switch_prob": lo.mix_switch_prob}  # fmt: skip
    return bundle(
        model,
        templates=prompts.resolve_templates(t.templates),
        name_style=t.class_names,
        descriptions=descriptions,
        descriptions_source=t.descriptions,
        train_templates=int(t.train_templates),
        distill_weight=float(lo.distill_weight),
        distill_form=lo.distill_form,
        projector_ratio=float(config.optim.projector_ratio),
        smoothing=float(lo.label_smoothing),
        mix=mix,
        num_classes=len(class_names),
    )


def cosine_distance(s, t):
    """`1 − mean_rows cos(s, t)` of `[N, E]` rows (PyTorch's `F.cosine_similarity`)."""
    return 1.0 - jnp.mean(jnp.sum(l2_normalize(s) * l2_normalize(t), axis=-1))


def l2_distance(s, t):
    """`mean_rows ‖s − t‖₂` of `[N, E]` rows, not squared; the gradient of a zero row is 0 (as
    PyTorch's norm gives it), not NaN: at the first step the student's class texts are the
    teacher's exactly."""
    sq = jnp.sum(jnp.square(s - t), axis=-1)
    nonzero = sq > 0
    return jnp.mean(jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, sq, 1.0)), 0.0))


DISTANCES = {"cosine": cosine_distance, "l2": l2_distance}


def template_draw(templates: Sequence[str], train_templates: int):
    """`draw(key) -> int32 [n]`: the templates a step uses (indices into `templates`): every
    bare one ("{}"), then `train_templates` of the others drawn without replacement (0: all)."""
    bare = [i for i, t in enumerate(templates) if t == descriptions_lib.BARE]
    other = [i for i, t in enumerate(templates) if t != descriptions_lib.BARE]
    take = len(other) if train_templates == 0 else min(train_templates, len(other))
    bare_idx = jnp.asarray(bare, jnp.int32)
    other_idx = jnp.asarray(other, jnp.int32)

    def draw(key):
        if take == len(other):
            picked = other_idx
        else:
            picked = jax.random.choice(key, other_idx, (take,), replace=False)
        return jnp.concatenate([picked, bare_idx])

    return draw


def bundle(
    model,
    *,
    templates=prompts.FROSTER_TEMPLATES,
    name_style: str = "verbatim",
    descriptions=None,
    descriptions_source: str = "",
    train_templates: int = 1,
    distill_weight: float = 2.0,
    distill_form: str = "cosine",
    projector_ratio: float = 1.0,
    smoothing: float = 0.0,
    mix: dict | None = None,
    num_classes: int | None = None,
):
    """The FROSTER objective for `model` (the module docstring).

    Args:
      model: the student (`models.actionclip.ActionCLIP` with `projectors=True`).
      templates: the prompt templates; "{}" entries are the bare class text.
      name_style: how plain class names are written (`prompts.CLASS_NAME_STYLES`), without
        descriptions.
      descriptions: `{class name: "Name: description"}` (`descriptions.read_descriptions`), or
        None for the plain names.
      descriptions_source: the file they came from (for error messages).
      train_templates: templates other than the bare ones drawn per step (0: all).
      distill_weight, distill_form: `w` and `D` of the loss.
      projector_ratio: the projectors' lr ratio (their optimiser group).
      smoothing, mix: as `class_texts.bundle`.
      num_classes: the training classes' count (None: a scorer that never trains).
    """
    from actionclip_jax.objectives import Objective  # pylint: disable=import-outside-toplevel

    if not model.projectors:
        raise ValueError("the FROSTER objective needs a model built with projectors=True")
    context_length = model.clip_sizes["context_length"]
    encode = scoring.text_encoder(model)
    teacher = model.clone(frame_stage="none", head="meanP", projectors=False, num_classes=0)
    draw = template_draw(templates, train_templates)
    distance = DISTANCES[distill_form]
    source = descriptions_source or "the class descriptions"

    def class_info(names):  # [K, C, L]
        if descriptions is not None:
            descriptions_lib.check_classes(descriptions, names, source)
        texts = descriptions_lib.class_texts(
            names, templates, descriptions, prompts.styled_names(names, name_style)
        )
        return descriptions_lib.tokens(texts, names, context_length, source)

    def check_class_lists(class_lists):
        if descriptions is not None:
            descriptions_lib.check_no_extra(descriptions, class_lists, source)

    def classes_fn(params, table):  # [1, C, E]: the ensemble of every template
        return scoring.ensemble_classifier(scoring.encode_class_texts(encode, params, table))[None]

    def train_context(names):
        return {"text_table": class_info(names)}

    def prepare_context(context, params):
        del params  # the teacher's class texts come from θ₀
        reference = {"clip": context["reference"]}
        # [K, C, E], each template normalised: frozen, so encoded once for the whole run.
        return {**context, "teacher_text": scoring.encode_class_texts(
            encode, reference, context["text_table"])}  # fmt: skip

    def apply(params, *args, **kwargs):
        return model.apply({"params": params}, *args, **kwargs)

    def loss_fn(params, inputs, rng, context):
        if num_classes is None:
            raise ValueError("the FROSTER scorer was made without training classes")
        k_mix, k_drop, k_text = jax.random.split(rng, 3)
        video = inputs["video"]
        targets = losses.smooth_labels(inputs["label"], num_classes, smoothing)  # [B, C]
        if mix is not None:
            video, targets = augment.mix_videos(video, targets, k_mix, **mix)

        drawn = draw(k_text)  # [n]
        table = context["text_table"][drawn]  # [n, C, L]
        n, c, l = table.shape
        text = apply(params, table.reshape(n * c, l), method=model.encode_text)
        w_student = scoring.ensemble_classifier(text.reshape(n, c, -1))  # [C, E]
        w_teacher = jax.lax.stop_gradient(
            scoring.ensemble_classifier(context["teacher_text"][drawn])
        )  # [C, E]

        v, frames = apply(params, video, train=True, rngs={"dropout": k_drop},
                          method=model.embeddings)  # [B, E], [B, T, E]  # fmt: skip
        scale = jnp.exp(params["clip"]["logit_scale"])
        ce = losses.soft_cross_entropy(scale * v @ w_student.T, targets)

        frames = l2_normalize(frames).reshape(-1, frames.shape[-1])  # [B·T, E]
        frames_teacher = teacher.apply(
            {"params": {"clip": context["reference"]}}, video, method=teacher.encode_frames
        )
        frames_teacher = jax.lax.stop_gradient(
            l2_normalize(frames_teacher.astype(jnp.float32)).reshape(frames.shape)
        )
        d_video = distance(apply(params, frames, method=model.project_video), frames_teacher)
        d_text = distance(apply(params, w_student, method=model.project_text), w_teacher)
        loss = ce + distill_weight * (d_video + d_text)
        return loss, {
            "loss_ce": ce,
            "distill_video": d_video,
            "distill_text": d_text,
            "logit_scale": scale,
            "template": drawn[0],
        }

    def predict_fn(params, video, weights):  # weights [1, C, E] → logits [N, 1, C]
        v = apply(params, video, method=model.video_embedding)
        return (jnp.exp(params["clip"]["logit_scale"]) * v @ weights[0].T)[:, None]

    return Objective(
        name="froster",
        loss_fn=loss_fn,
        train_context=train_context,
        class_info=class_info,
        classes_fn=classes_fn,
        predict_fn=predict_fn,
        param_groups=(("projectors", PROJECTORS, projector_ratio),),
        needs_reference=True,
        prepare_context=prepare_context,
        check_class_lists=check_class_lists,
        with_text=True,
        scores_unseen_classes=True,
        num_templates=len(templates),
    )
