r"""Ablation: the unimodal baseline. The same video encoder with a 1-of-N linear head trained
with cross-entropy, no text (the paper: 75.45 top-1 against ActionCLIP's 78.36 on K400, B/32).

  python -m actionclip_jax.main --config=configs/ablation_unimodal.py:k400 --workdir=DIR/unimodal

The argument picks the data set as in `ablation_base.py`; everything else is that recipe. The
linear layer (`classifier`, one output per class of `data.labels`) reads the un-normalised video
feature of the temporal head and learns at lr × `optim.fusion_ratio`, like the head. From an
OpenAI CLIP checkpoint only the image tower is imported (text tower and logit scale are dropped);
the layer starts random. Evaluation is the softmax of the logits, averaged over views. A
classifier cannot score classes it was not trained on: zero-shot and base-to-novel protocols
are refused.
"""

from configs import ablation_base


def get_config(arg=None):
    config = ablation_base.get_config(arg)
    config.model.objective = "classifier"
    return config
