r"""Ablation: the unimodal baseline. The same video encoder with a 1-of-N linear head trained
with cross-entropy, no text (the paper: 75.45 top-1 against ActionCLIP's 78.36 on K400, B/32).

  python -m actionclip_jax.main --config=configs/ablation_unimodal.py:k400 --workdir=DIR/unimodal

The argument picks the data set as in `ablation_base.py`.
"""

from configs import ablation_base


def get_config(arg=None):
    config = ablation_base.get_config(arg)
    config.model.objective = "classifier"
    return config
