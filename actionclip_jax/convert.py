r"""Converts a PyTorch CLIP / ActionCLIP checkpoint into a directory that loads without PyTorch.

  python -m actionclip_jax.convert --checkpoint=ViT-B-16.pt --output=/data/clip_b16

The output holds the parameters as an orbax checkpoint (`params/`) and the model's sizes in
`actionclip_jax.json`; `actionclip_jax.load_clip(DIR)` reads it on hosts without torch (TPU VMs).
"""

from absl import app
from absl import flags

from actionclip_jax import weights

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "PyTorch .pt file to convert.", required=True)
_OUTPUT = flags.DEFINE_string(
    "output", None, "Directory to write (local path or gs://).", required=True
)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing converted directory.")


def main(argv):
    del argv
    meta = weights.convert(_CHECKPOINT.value, _OUTPUT.value, overwrite=_OVERWRITE.value)
    print(f"wrote {_OUTPUT.value}: {meta}")


if __name__ == "__main__":
    app.run(main)
