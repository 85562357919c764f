r"""Ablation: both CLIP encoders frozen; only the temporal head (and the logit scale) trains.

  python -m actionclip_jax.main --config=configs/ablation_frozen_both.py:k400 \
      --workdir=DIR/frozen_both

The argument picks the data set as in `ablation_base.py`.
"""

from configs import ablation_base, ablation_frozen_text, ablation_frozen_visual


def get_config(arg=None):
    config = ablation_base.get_config(arg)
    towers = (ablation_frozen_text.TEXT_TOWER, ablation_frozen_visual.IMAGE_TOWER)
    config.optim.freeze = "|".join(f"(?:{t})" for t in towers)
    return config
