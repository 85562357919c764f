r"""The reference row of the paper's ablations, on any data set: ActionCLIP as shipped.

  python -m actionclip_jax.main --config=configs/ablation_base.py:k400 --workdir=DIR/base

The argument picks the data set and its recipe: `k400` (default; the paper's ablation setting,
ViT-B/32, 8 frames: 78.36 top-1), `k400_b16`, `ucf101`, `hmdb51`, or `demo` (the built-in
synthetic set, minutes on a CPU). The `ablation_*.py` configs change one thing each and take the
same argument; compare the runs with

  python -m actionclip_jax.report DIR/base DIR/unimodal DIR/bare_labels ... --files=summary
"""

from configs import demo, hmdb51_b16, k400_b16, k400_b32, ucf101_b16

DATASETS = {
    "k400": k400_b32,
    "k400_b16": k400_b16,
    "ucf101": ucf101_b16,
    "hmdb51": hmdb51_b16,
    "demo": demo,
}


def get_config(arg=None):
    name = arg or "k400"
    if name not in DATASETS:
        raise ValueError(f"ablation data set must be one of {sorted(DATASETS)}, got {name!r}")
    return DATASETS[name].get_config()
