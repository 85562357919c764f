"""FROSTER's residual feature projectors (`projector_v`, `projector_t`).

`f + scale · W₂ · GELU(W₁ · f)`: two bias-free square linear layers with the exact (erf) GELU
between them, `W₁` Kaiming-normal (PyTorch's `kaiming_normal_`: std √(2 / fan_in), a plain normal,
not Flax's truncated one) and `W₂` zero, so that the projector starts as the identity. FROSTER
applies them to the student's normalised frame features and class-text features before comparing
those with the frozen teacher's; the scores (cross-entropy, evaluation) use the features without
them. The parameter names (`linear1`, `linear2`) stand for the original's `projector_*.0` and
`projector_*.2` (`importers` maps them).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

# The residual scale (the original's `alpha = 0.1` in `TemporalClipVideo.forward`).
SCALE = 0.1


class ResidualProjector(nn.Module):
    """`[..., E]` → `[..., E]`, computed in float32 (a 512 × 512 layer pair: nothing to save)."""

    scale: float = SCALE

    @nn.compact
    def __call__(self, x):
        e = x.shape[-1]
        x = x.astype(jnp.float32)
        h = nn.Dense(
            e,
            use_bias=False,
            kernel_init=nn.initializers.variance_scaling(2.0, "fan_in", "normal"),
            name="linear1",
        )(x)
        h = jax.nn.gelu(h, approximate=False)
        h = nn.Dense(e, use_bias=False, kernel_init=nn.initializers.zeros, name="linear2")(h)
        return x + self.scale * h
