r"""Ablation: a frozen image encoder. CLIP's image tower keeps its initial weights; the temporal
head, the text tower and the logit scale train.

  python -m actionclip_jax.main --config=configs/ablation_frozen_visual.py:k400 \
      --workdir=DIR/frozen_visual

The argument picks the data set as in `ablation_base.py`.
"""

from configs import ablation_base

IMAGE_TOWER = r"clip/visual/.*"


def get_config(arg=None):
    config = ablation_base.get_config(arg)
    config.optim.freeze = IMAGE_TOWER
    return config
