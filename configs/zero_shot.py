r"""Zero-shot transfer of a Kinetics-400 ActionCLIP model to UCF101, HMDB51 or Kinetics-600, no
training. The argument picks the data set (default ucf101):

  python -m actionclip_jax.main --config=configs/zero_shot.py:ucf101 --workdir=DIR \
      --config.init.checkpoint=vit-b-16-8f.pt --config.data.root=data/ucf101/videos
  python -m actionclip_jax.main --config=configs/zero_shot.py:hmdb51 --workdir=DIR \
      --config.init.checkpoint=vit-b-16-8f.pt --config.data.root=data/hmdb51/videos
  python -m actionclip_jax.main --config=configs/zero_shot.py:k600 --workdir=DIR \
      --config.init.checkpoint=vit-b-16-8f.pt --config.data.root=data/k600

UCF101 / HMDB51: all 101 / 51 classes on each of the three official test splits, reported as mean
± std over the splits (`eval_results.json`; each split in `eval_results_val{1,2,3}.json`); and
half-class: on each split, 10 random halves of the classes (seeds (eval.half_class_seed, i)), the
softmax over the half's classes only, mean ± std over all (split, half) pairs. `data.root` holds
every video file directly (the lists name files without class folders): `python -m
actionclip_jax.splits flatten --src=UCF-101 --output=DIR`.

Kinetics-600 (X-CLIP's and ViFi-CLIP's protocol): three splits of 160 classes drawn from the 220
K600 classes that K400 lacks, each scored against its own 160 names, mean ± std over the three.
Its lists' paths (`train/<id>_<start>_<end>.mp4`) are relative to `data.root`. New splits from any
two label files: `python -m actionclip_jax.splits derive_zero_shot --old=kinetics400
--new=kinetics600 --output=DIR`.

The split lists and label files ship with the package (built-in names such as `ucf101/val1`).
"""

from configs import base

DATASETS = ("ucf101", "hmdb51", "k600")


def get_config(arg=None):
    dataset = arg or "ucf101"
    if dataset not in DATASETS:
        raise ValueError(f"zero_shot: the data set must be one of {DATASETS}, got {dataset!r}")
    config = base.get_config()
    config.mode = "eval"
    config.init.checkpoint = "vit-b-16-8f.pt"  # a K400 ActionCLIP model (or a converted dir)
    config.data.eval_batch_size = 64  # as the original's zero-shot configs
    config.eval.protocol = "zero_shot"
    if dataset == "k600":
        config.data.root = "data/k600"
        config.data.labels = "kinetics600_zero_shot_split1"
        config.data.val = "kinetics600/zero_shot_split1"
        config.eval.splits = tuple(f"kinetics600/zero_shot_split{i}" for i in (1, 2, 3))
        config.eval.split_labels = tuple(f"kinetics600_zero_shot_split{i}" for i in (1, 2, 3))
        return config
    config.data.root = f"data/{dataset}/videos"
    config.data.labels = dataset
    config.data.val = f"{dataset}/val1"  # built-in list names, resolved by the run plan
    config.eval.splits = tuple(f"{dataset}/val{i}" for i in (1, 2, 3))
    config.eval.half_class_subsets = 10
    return config
