"""Open-VCLIP's interpolated weight optimisation (IWO) on the cross-entropy over class texts.

Each step minimises `L(θ) + w · L(α·θ₀ + (1 − α)·θ)` on the same batch, α ~ U(low, high) drawn per
(micro-)batch, θ₀ the original CLIP weights (`init.clip`, else `init.checkpoint`; the run's random
initial weights when neither is given), `(low, high) = loss.interpolation_alpha` (0, 0.6),
`w = loss.interpolation_weight` (0.5). The second term's gradient is taken as the original takes
it: w.r.t. the interpolated weights and added to θ's, without the (1 − α) factor
(`class_texts.interpolate`). Every CLIP weight is interpolated (both towers and the logit scale);
with the frozen classifier (`text.classifier="frozen"`, Open-VCLIP's) the text tower plays no
part. θ₀ lives on the devices beside the parameters, sharded like them, without optimiser state.

Scoring is `class_texts`'s. Open-VCLIP evaluates the uniform average of its epoch checkpoints
interpolated half-way back to θ₀ (`weight_space.*`).
"""

from actionclip_jax.objectives import class_texts


def model_fields(num_classes: int) -> dict:
    return class_texts.model_fields(num_classes)


def make(config, model, class_names):
    low, high = (float(a) for a in config.loss.interpolation_alpha)
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(
            f"loss.interpolation_alpha must be (low, high) with 0 <= low <= high <= 1, got "
            f"{tuple(config.loss.interpolation_alpha)}"
        )
    return class_texts.bundle(
        model,
        num_classes=len(class_names),
        interpolation=(low, high, float(config.loss.interpolation_weight)),
        name="weight_interpolation",
        **class_texts.options(config),
    )
