r"""ActionCLIP ViT-B/16, 8 frames, UCF101 split 1, fine-tuned from the K400 model (97.1 top-1
reported for 32 frames).

  python -m actionclip_jax.main --config=configs/ucf101_b16.py --workdir=DIR \
      --config.init.checkpoint=vit-b-16-8f.pt
"""

from configs import base


def get_config():
    config = base.get_config()
    config.init.checkpoint = "vit-b-16-8f.pt"  # the K400 ActionCLIP model, as the original
    config.data.train = "data/ucf101/train_split1.txt"
    config.data.val = "data/ucf101/val_split1.txt"
    config.data.root = "data/ucf101"
    config.data.labels = "ucf101"
    config.data.batch_size = 32
    config.data.randaug_n = 0  # the original uses RandAugment on K400 only
    return config
