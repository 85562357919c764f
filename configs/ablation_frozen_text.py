r"""Ablation: a frozen text encoder. The text tower keeps its initial weights; the image tower,
the temporal head and the logit scale train.

  python -m actionclip_jax.main --config=configs/ablation_frozen_text.py:k400 \
      --workdir=DIR/frozen_text

The argument picks the data set as in `ablation_base.py`. `ablation_frozen_visual.py` freezes
the image tower instead, `ablation_frozen_both.py` both.
"""

from configs import ablation_base

# Every text-tower parameter of CLIP (paths as `optim.param_paths` writes them).
TEXT_TOWER = (
    r"clip/(token_embedding|positional_embedding|transformer|ln_final|text_projection)(/.*)?"
)


def get_config(arg=None):
    config = ablation_base.get_config(arg)
    config.optim.freeze = TEXT_TOWER
    return config
