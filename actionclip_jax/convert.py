r"""Converts a PyTorch CLIP / ActionCLIP checkpoint into a directory that loads without PyTorch.

  python -m actionclip_jax.convert --checkpoint=ViT-B-16.pt --output=/data/clip_b16
  python -m actionclip_jax.convert --checkpoint=vifi_clip_10_epochs_k400_full_finetuned.pth \
      --clip=ViT-B-16.pt --output=/data/vificlip_k400
  python -m actionclip_jax.convert --checkpoint=openvclip-b16/swa_2_22.pth --output=/data/ovc

Besides CLIP and ActionCLIP files it reads ViFi-CLIP's and Open-VCLIP's released checkpoints and
records which recipe they came from (`actionclip_jax.importers`); ViFi-CLIP's take CLIP's token
embedding from `--clip`.

The output holds the parameters as an orbax checkpoint (`params/`) and the model's sizes in
`actionclip_jax.json`; `actionclip_jax.load_clip(DIR)` reads it on hosts without torch (TPU VMs).
"""

import sys

from absl import app
from absl import flags

from actionclip_jax import weights

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "PyTorch .pt file to convert.", required=True)
_OUTPUT = flags.DEFINE_string(
    "output", None, "Directory to write (local path or gs://).", required=True
)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing converted directory.")
_CLIP = flags.DEFINE_string(
    "clip", None, "OpenAI CLIP file: the token embedding that ViFi-CLIP checkpoints leave out."
)


def main(argv):
    del argv
    try:
        meta = weights.convert(
            _CHECKPOINT.value, _OUTPUT.value, overwrite=_OVERWRITE.value, clip_source=_CLIP.value
        )
    except (OSError, ValueError) as err:  # missing files, bad or unsupported checkpoints
        sys.exit(f"convert: error: {err}")
    recipe = f" ({meta['recipe']} checkpoint)" if meta.get("recipe") else ""
    print(f"wrote {_OUTPUT.value}{recipe}: {meta}")


if __name__ == "__main__":
    app.run(main)
