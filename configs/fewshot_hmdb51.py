r"""Few-shot HMDB51: K videos per class of split 1 (K = 2, 4, 8, 16), from OpenAI CLIP weights,
evaluated on split 1's test list over all 51 classes.

  python -m actionclip_jax.main --config=configs/fewshot_hmdb51.py:16 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/hmdb51/videos

The standard K-shot lists ship with the package (`hmdb51/train1_few_shot_K`). A new draw from
any list (e.g. the full split-1 training list, `<video> <label>` a line), written out so that a
run can be repeated:

  python -m actionclip_jax.splits few_shot --list=TRAIN_LIST --labels=hmdb51 --k=4 --seed=1 \
      --output=FILE

then `--config.data.train=FILE`. `data.root` holds every video file directly:
`python -m actionclip_jax.splits flatten --src=hmdb51_org --output=DIR`.
"""

from configs import base

SHOTS = (2, 4, 8, 16)


def get_config(arg=None):
    return few_shot("hmdb51", arg)


def few_shot(dataset: str, arg=None):
    """The few-shot config of `dataset` (`hmdb51` or `ucf101`, its built-in names), K = `arg`."""
    k = int(arg or 16)
    if k not in SHOTS:
        raise ValueError(f"few-shot K must be one of {SHOTS}, got {k}")
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
