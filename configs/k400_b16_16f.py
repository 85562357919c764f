r"""ActionCLIP ViT-B/16, 16 frames, Kinetics-400: the paper's 81.68 top-1 (single view).

python -m actionclip_jax.main --config=configs/k400_b16_16f.py --workdir=DIR
"""

from configs import k400_b16


def get_config():
    config = k400_b16.get_config()
    config.data.num_frames = 16
    config.model.remat = True  # twice the frames: trade compute for activation memory
    return config
