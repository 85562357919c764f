r"""Base-to-novel UCF101: 16 shots a class of the base half of the classes, from OpenAI CLIP
weights; evaluated on the base classes, the novel classes, and their harmonic mean (HM).

  python -m actionclip_jax.main --config=configs/base2novel_ucf101.py:s1 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/ucf101/videos

The argument picks the training draw (s1, s2, s3; default s1); the protocol reports the mean over
the three runs: `python -m actionclip_jax.report DIR_S1 DIR_S2 DIR_S3 --files=summary --mean`.
The class split (ViFi-CLIP's) and the lists ship with the package: `ucf101_base` / `ucf101_novel`
labels and `ucf101/base2novel/...` lists; each half is scored against its own class names.
`data.root` holds every video file directly: `python -m actionclip_jax.splits flatten
--src=UCF-101 --output=DIR`.
"""

from configs import base


def get_config(arg=None):
    draw = arg or "s1"
    if draw not in ("s1", "s2", "s3"):
        raise ValueError(f"base2novel draw must be s1, s2 or s3, got {draw!r}")
    config = base.get_config()
    config.init.checkpoint = "ViT-B-16.pt"  # OpenAI CLIP: the protocol starts there
    config.data.labels = "ucf101_base"  # training sees the base classes only
    config.data.train = f"ucf101/base2novel/fs_base_{draw}_train"  # built-in list names
    config.data.val = "ucf101/base2novel/base_val"  # evaluated during training
    config.data.root = "data/ucf101/videos"
    config.data.batch_size = 32
    config.data.randaug_n = 0  # the original uses RandAugment on K400 only
    config.eval.protocol = "base2novel"
    config.eval.splits = ("ucf101/base2novel/base_val", "ucf101/base2novel/novel_val")
    config.eval.split_labels = ("ucf101_base", "ucf101_novel")
    config.eval.split_names = ("base", "novel")
    config.eval.shots = 16
    return config
