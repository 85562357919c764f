r"""ActionCLIP ViT-B/32, 8 frames, Kinetics-400: the paper's 78.36 top-1 (single view).

  python -m actionclip_jax.main --config=configs/k400_b32.py --workdir=DIR \
      --config.init.checkpoint=ViT-B-32.pt
"""

from configs import k400_b16


def get_config():
    config = k400_b16.get_config()
    config.init.checkpoint = "ViT-B-32.pt"
    config.model.clip.vision_patch_size = 32
    return config
