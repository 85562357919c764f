"""ActionCLIP's objective: video–text matching with the symmetric KL loss against label equality.

Training: each sample's text is its class under one template drawn uniformly (keyed by its dataset
index); the loss compares `exp(logit_scale) · v̂ t̂ᵀ` over the global batch with the soft target
of `losses.label_target`. Scoring: every class under every template, `EVAL_SCALE` (100) × cosine
similarity per template, as the original's evaluation.
"""

import jax.numpy as jnp

from actionclip_jax import losses, prompts, scoring


def model_fields(num_classes: int) -> dict:
    del num_classes  # text scores any class: no layer per class
    return {"with_text": True, "num_classes": 0}


def make(config, model, class_names):
    del class_names  # the prompt tables are built per class list, in class_info
    return bundle(model, prompts.resolve_templates(config.text.templates))


def bundle(model, templates=prompts.TEMPLATES):
    """The objective for `model` with the given prompt templates (also `predict`'s scorer)."""
    from actionclip_jax.objectives import Objective  # pylint: disable=import-outside-toplevel

    context_length = model.clip_sizes["context_length"]

    def class_info(names):
        return prompts.prompt_tokens(names, templates, context_length)  # [K, C, L]

    def loss_fn(params, inputs, rng, context):
        table = context["text_table"]
        tokens = prompts.sample_prompt_tokens(inputs["keys"], table, inputs["label"])  # [B, L]
        logits, _ = model.apply(
            {"params": params}, inputs["video"], tokens, train=True, rngs={"dropout": rng}
        )
        scale = jnp.exp(params["clip"]["logit_scale"])
        return losses.kl_loss(logits, inputs["label"]), {"logit_scale": scale}

    encode = scoring.text_encoder(model)

    def classes_fn(params, table):
        return scoring.encode_class_texts(encode, params, table)  # [K, C, E]

    def predict_fn(params, video, text):
        feats = model.apply({"params": params}, video, method=model.video_embedding)  # [N, E]
        return scoring.template_logits(feats, text)

    return Objective(
        name="video_text",
        loss_fn=loss_fn,
        train_context=lambda names: {"text_table": class_info(names)},
        class_info=class_info,
        classes_fn=classes_fn,
        predict_fn=predict_fn,
        with_text=True,
        scores_unseen_classes=True,
        num_templates=len(templates),
    )
