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

from configs import base2novel_hmdb51


def get_config(arg=None):
    return base2novel_hmdb51.base_to_novel("ucf101", arg)
