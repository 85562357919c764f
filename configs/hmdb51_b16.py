r"""ActionCLIP ViT-B/16, 8 frames, HMDB51 split 1, from OpenAI CLIP weights (as the original's
config, despite its README).

  python -m actionclip_jax.main --config=configs/hmdb51_b16.py --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt
"""

from configs import base


def get_config():
    config = base.get_config()
    config.init.checkpoint = "ViT-B-16.pt"
    config.data.train = "data/hmdb51/train_split1.txt"
    config.data.val = "data/hmdb51/val_split1.txt"
    config.data.root = "data/hmdb51"
    config.data.labels = "hmdb51"
    config.data.batch_size = 64
    config.data.randaug_n = 0
    return config
