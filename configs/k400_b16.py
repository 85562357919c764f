r"""ActionCLIP ViT-B/16, 8 frames, Kinetics-400: the paper's 81.09 top-1 (single view).

  python -m actionclip_jax.main --config=configs/k400_b16.py --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt

Expects `data/k400/{train,val}.txt` (write them with `python -m data_pipeline.make_lists`, or
point `data.train` / `data.val` at prepared shards) relative to the working directory.
"""

from configs import base


def get_config():
    config = base.get_config()
    config.init.checkpoint = "ViT-B-16.pt"  # OpenAI CLIP, or a converted directory
    config.data.train = "data/k400/train.txt"
    config.data.val = "data/k400/val.txt"
    config.data.root = "data/k400"
    config.data.labels = "kinetics400"
    return config
