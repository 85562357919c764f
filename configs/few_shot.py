r"""Few-shot HMDB51 or UCF101: K videos per class of split 1 (K = 2, 4, 8, 16), from OpenAI CLIP
weights, evaluated on split 1's test list over all classes. The argument is `DATA SET[,K]`
(default `hmdb51,16`):

  python -m actionclip_jax.main --config=configs/few_shot.py:hmdb51,16 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/hmdb51/videos
  python -m actionclip_jax.main --config=configs/few_shot.py:ucf101,2 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/ucf101/videos

The standard K-shot lists ship with the package (`hmdb51/train1_few_shot_K`,
`ucf101/train1_few_shot_K`). A new draw from any list (e.g. the full split-1 training list,
`<video> <label>` a line), written out so that a run can be repeated:

  python -m actionclip_jax.splits few_shot --list=TRAIN_LIST --labels=hmdb51 --k=4 --seed=1 \
      --output=FILE

then `--config.data.train=FILE`. `data.root` holds every video file directly:
`python -m actionclip_jax.splits flatten --src=hmdb51_org --output=DIR`.
"""

from configs import base

DATASETS = ("hmdb51", "ucf101")
SHOTS = (2, 4, 8, 16)


def get_config(arg=None):
    dataset, _, k = (arg or "hmdb51").partition(",")
    k = int(k or 16)
    if dataset not in DATASETS:
        raise ValueError(f"few_shot: the data set must be one of {DATASETS}, got {dataset!r}")
    if k not in SHOTS:
        raise ValueError(f"few_shot: K must be one of {SHOTS}, got {k}")
    config = base.get_config()
    config.init.checkpoint = "ViT-B-16.pt"  # OpenAI CLIP: the few-shot protocol starts there
    config.data.labels = dataset
    config.data.train = f"{dataset}/train1_few_shot_{k}"  # built-in list names
    config.data.val = f"{dataset}/val1"
    config.data.root = f"data/{dataset}/videos"
    config.data.batch_size = 32  # below the smallest list (2 shots × 51 HMDB51 classes = 102)
    config.data.randaug_n = 0  # the original uses RandAugment on K400 only
    config.eval.protocol = "few_shot"
    config.eval.shots = k
    config.eval_every_epochs = 5  # the test list is many times the training list
    return config
