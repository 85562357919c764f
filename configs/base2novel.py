r"""Base-to-novel on Kinetics-400, HMDB51 or UCF101: 16 shots a class of the base half of the
classes, from OpenAI CLIP weights; evaluated on the base classes, the novel classes, and their
harmonic mean (HM). The argument is `DATA SET[,DRAW]` (default `k400,s1`):

  python -m actionclip_jax.main --config=configs/base2novel.py:k400,s1 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/k400
  python -m actionclip_jax.main --config=configs/base2novel.py:hmdb51,s2 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/hmdb51/videos

The draw (s1, s2, s3) picks the training list; the protocol reports the mean over the three runs:
`python -m actionclip_jax.report DIR_S1 DIR_S2 DIR_S3 --files=summary --mean`. The class split
(ViFi-CLIP's) and the lists ship with the package: `<data set>_base` / `<data set>_novel` labels
and `<data set>/base2novel/...` lists; each half is scored against its own class names.
`data.root`: for Kinetics-400 it holds `train/` and `val/` folders of
`<youtube id>_<start>_<end>.mp4` files (the lists' paths are relative to it); for HMDB51 and
UCF101 every video file directly (`python -m actionclip_jax.splits flatten --src=UCF-101
--output=DIR`).
"""

from configs import base

# data set argument -> (built-in name, data.root, global batch)
DATASETS = {
    "k400": ("kinetics400", "data/k400", 64),
    "hmdb51": ("hmdb51", "data/hmdb51/videos", 32),
    "ucf101": ("ucf101", "data/ucf101/videos", 32),
}
DRAWS = ("s1", "s2", "s3")


def get_config(arg=None):
    dataset, _, draw = (arg or "k400").partition(",")
    draw = draw or "s1"
    if dataset not in DATASETS:
        raise ValueError(f"base2novel: the data set must be one of {sorted(DATASETS)}, got "
                         f"{dataset!r}")  # fmt: skip
    if draw not in DRAWS:
        raise ValueError(f"base2novel: the draw must be one of {DRAWS}, got {draw!r}")
    name, root, batch = DATASETS[dataset]
    lists = f"{name}/base2novel"  # built-in list names
    config = base.get_config()
    config.init.checkpoint = "ViT-B-16.pt"  # OpenAI CLIP: the protocol starts there
    config.data.labels = f"{name}_base"  # training sees the base classes only
    config.data.train = f"{lists}/fs_base_{draw}_train"
    config.data.val = f"{lists}/base_val"  # evaluated during training
    config.data.root = root
    config.data.batch_size = batch
    if dataset != "k400":
        config.data.randaug_n = 0  # the original uses RandAugment on K400 only
    config.eval.protocol = "base2novel"
    config.eval.splits = (f"{lists}/base_val", f"{lists}/novel_val")
    config.eval.split_labels = (f"{name}_base", f"{name}_novel")
    config.eval.split_names = ("base", "novel")
    config.eval.shots = 16
    return config
