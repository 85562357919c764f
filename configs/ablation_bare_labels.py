r"""Ablation: label words instead of prompts. Each class's text is its name alone ("{}"), in
training and evaluation (the paper: 77.82 top-1 against 78.36 with the 16 templates, K400 B/32).

  python -m actionclip_jax.main --config=configs/ablation_bare_labels.py:k400 \
      --workdir=DIR/bare_labels

The argument picks the data set as in `ablation_base.py`. Other template sets:
`--config.text.templates=single` (the first template) or a file with one template a line.
"""

from configs import ablation_base


def get_config(arg=None):
    config = ablation_base.get_config(arg)
    config.text.templates = "bare"
    return config
