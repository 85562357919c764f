r"""Few-shot UCF101: K videos per class of split 1 (K = 2, 4, 8, 16), from OpenAI CLIP weights,
evaluated on split 1's test list over all 101 classes.

  python -m actionclip_jax.main --config=configs/fewshot_ucf101.py:16 --workdir=DIR \
      --config.init.checkpoint=ViT-B-16.pt --config.data.root=data/ucf101/videos

The standard K-shot lists ship with the package (`ucf101/train1_few_shot_K`). A new draw from
any list (e.g. the full split-1 training list, `<video> <label>` a line), written out so that a
run can be repeated:

  python -m actionclip_jax.splits few_shot --list=TRAIN_LIST --labels=ucf101 --k=4 --seed=1 \
      --output=FILE

then `--config.data.train=FILE`. `data.root` holds every video file directly:
`python -m actionclip_jax.splits flatten --src=UCF-101 --output=DIR`.
"""

from configs import fewshot_hmdb51


def get_config(arg=None):
    return fewshot_hmdb51.few_shot("ucf101", arg)
