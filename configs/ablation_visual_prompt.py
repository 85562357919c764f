r"""Ablation: the visual prompt, i.e. how frame features become one video feature.

  python -m actionclip_jax.main --config=configs/ablation_visual_prompt.py:meanP,k400 \
      --workdir=DIR/meanP

The argument is `PROMPT[,DATA SET]`. Post-network prompts (the temporal head, same as
`--config.model.head=...`): `meanP`, `conv1d`, `lstm`, `transf` (the default), `transf_cls`.
Pre-/in-network prompts (`--config.model.frame_stage=...`): `joint` (space-time tokens in the
image tower) and `shift` (temporal shift inside its blocks), each with the `meanP` head so that
only that prompt models time. The data set is as in `ablation_base.py` (default k400).
"""

from configs import ablation_base

HEADS = ("meanP", "conv1d", "lstm", "transf", "transf_cls")
FRAME_STAGES = ("joint", "shift")


def get_config(arg=None):
    prompt, _, dataset = (arg or "transf").partition(",")
    if prompt not in HEADS + FRAME_STAGES:
        raise ValueError(f"visual prompt must be one of {HEADS + FRAME_STAGES}, got {prompt!r}")
    config = ablation_base.get_config(dataset or None)
    if prompt in HEADS:
        config.model.head = prompt
    else:
        config.model.frame_stage = prompt
        config.model.head = "meanP"
    # A checkpoint's head of another kind cannot be loaded into this one.
    config.init.load_head = prompt == "transf"
    return config
