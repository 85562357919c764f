r"""Base-to-novel Kinetics-400: 16 shots a class of the base half of the classes, from OpenAI CLIP
weights; evaluated on the base classes, the novel classes, and their harmonic mean (HM).

  python -m actionclip_jax.main --config=configs/base2novel_k400.py:s1 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/k400

The argument picks the training draw (s1, s2, s3; default s1); the protocol reports the mean over
the three runs: `python -m actionclip_jax.report DIR_S1 DIR_S2 DIR_S3 --files=summary --mean`.
The class split (ViFi-CLIP's) and the lists ship with the package: `kinetics400_base` /
`kinetics400_novel` labels and `kinetics400/base2novel/...` lists; each half is scored against
its own class names.
`data.root` holds `train/` and `val/` folders of `<youtube id>_<start>_<end>.mp4` files (the
lists' paths are relative to it).
"""

from configs import base


def get_config(arg=None):
    draw = arg or "s1"
    if draw not in ("s1", "s2", "s3"):
        raise ValueError(f"base2novel draw must be s1, s2 or s3, got {draw!r}")
    config = base.get_config()
    config.init.checkpoint = "ViT-B-16.pt"  # OpenAI CLIP: the protocol starts there
    config.data.labels = "kinetics400_base"  # training sees the base classes only
    config.data.train = f"kinetics400/base2novel/fs_base_{draw}_train"  # built-in list names
    config.data.val = "kinetics400/base2novel/base_val"  # evaluated during training
    config.data.root = "data/k400"
    config.data.batch_size = 64
    config.eval.protocol = "base2novel"
    config.eval.splits = ("kinetics400/base2novel/base_val", "kinetics400/base2novel/novel_val")
    config.eval.split_labels = ("kinetics400_base", "kinetics400_novel")
    config.eval.split_names = ("base", "novel")
    config.eval.shots = 16
    return config
