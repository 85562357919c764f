r"""Zero-shot UCF101: a Kinetics-400 ActionCLIP model on UCF101's 101 classes, no training.

  python -m actionclip_jax.main --config=configs/zero_shot_ucf101.py --workdir=DIR \
      --config.init.checkpoint=vit-b-16-8f.pt --config.data.root=data/ucf101/videos

Full-class: all 101 classes on each of the three official test splits, reported as mean ± std over
the splits (`eval_results.json`; each split in `eval_results_val{1,2,3}.json`). Half-class: on each
split, 10 random halves of the classes (seeds (eval.half_class_seed, i)), the softmax over the
half's classes only; mean ± std over all (split, half) pairs. The split lists ship with the
package; `data.root` is a folder holding every video file directly (the lists name files without
class folders): `python -m actionclip_jax.splits flatten --src=UCF-101 --output=DIR`.
"""

from configs import base


def get_config():
    config = base.get_config()
    config.mode = "eval"
    config.init.checkpoint = "vit-b-16-8f.pt"  # a K400 ActionCLIP model (or a converted dir)
    config.data.labels = "ucf101"
    config.data.val = "ucf101/val1"  # built-in list name, resolved by actionclip_jax.protocols
    config.data.root = "data/ucf101/videos"
    config.data.eval_batch_size = 64  # as the original's zero-shot configs
    config.eval.protocol = "zero_shot"
    config.eval.splits = ("ucf101/val1", "ucf101/val2", "ucf101/val3")
    config.eval.half_class_subsets = 10
    return config
