r"""Base-to-novel HMDB51: 16 shots a class of the base half of the classes, from OpenAI CLIP
weights; evaluated on the base classes, the novel classes, and their harmonic mean (HM).

  python -m actionclip_jax.main --config=configs/base2novel_hmdb51.py:s1 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/hmdb51/videos

The argument picks the training draw (s1, s2, s3; default s1); the protocol reports the mean over
the three runs: `python -m actionclip_jax.report DIR_S1 DIR_S2 DIR_S3 --files=summary --mean`.
The class split (ViFi-CLIP's) and the lists ship with the package: `hmdb51_base` / `hmdb51_novel`
labels and `hmdb51/base2novel/...` lists; each half is scored against its own class names.
`data.root` holds every video file directly: `python -m actionclip_jax.splits flatten
--src=hmdb51_org --output=DIR`.
"""

from configs import base


def get_config(arg=None):
    return base_to_novel("hmdb51", arg)


def base_to_novel(dataset: str, arg=None):
    """The base-to-novel config of `dataset` (`hmdb51` or `ucf101`), draw `arg` (s1|s2|s3)."""
    draw = arg or "s1"
    if draw not in ("s1", "s2", "s3"):
        raise ValueError(f"base2novel draw must be s1, s2 or s3, got {draw!r}")
    lists = f"{dataset}/base2novel"  # built-in list names
    config = base.get_config()
    config.init.checkpoint = "ViT-B-16.pt"  # OpenAI CLIP: the protocol starts there
    config.data.labels = f"{dataset}_base"  # training sees the base classes only
    config.data.train = f"{lists}/fs_base_{draw}_train"
    config.data.val = f"{lists}/base_val"  # evaluated during training
    config.data.root = f"data/{dataset}/videos"
    config.data.batch_size = 32
    config.data.randaug_n = 0  # the original uses RandAugment on K400 only
    config.eval.protocol = "base2novel"
    config.eval.splits = (f"{lists}/base_val", f"{lists}/novel_val")
    config.eval.split_labels = (f"{dataset}_base", f"{dataset}_novel")
    config.eval.split_names = ("base", "novel")
    config.eval.shots = 16
    return config
