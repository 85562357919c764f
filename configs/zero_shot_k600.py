r"""Zero-shot Kinetics-600: a Kinetics-400 model on the K600 classes that K400 does not have.

  python -m actionclip_jax.main --config=configs/zero_shot_k600.py --workdir=DIR \
      --config.init.checkpoint=vit-b-16-8f.pt --config.data.root=data/k600

The standard protocol (X-CLIP, ViFi-CLIP): three splits, each of 160 classes drawn from the 220
K600 classes that are new, each scored against its own 160 class names; mean ± std over the
three. Lists and labels ship with the package (`kinetics600/zero_shot_split{1,2,3}`); their
paths (`train/<id>_<start>_<end>.mp4`) are relative to `data.root`. New splits from any two label
files: `python -m actionclip_jax.splits derive_zero_shot --old=kinetics400 --new=kinetics600
--output=DIR`.
"""

from configs import base


def get_config():
    config = base.get_config()
    config.mode = "eval"
    config.init.checkpoint = "vit-b-16-8f.pt"  # a K400 ActionCLIP model (or a converted dir)
    config.data.labels = "kinetics600_zero_shot_split1"
    config.data.val = "kinetics600/zero_shot_split1"
    config.data.root = "data/k600"
    config.data.eval_batch_size = 64
    config.eval.protocol = "zero_shot"
    config.eval.splits = tuple(f"kinetics600/zero_shot_split{i}" for i in (1, 2, 3))
    config.eval.split_labels = tuple(f"kinetics600_zero_shot_split{i}" for i in (1, 2, 3))
    return config
