r"""Converts checkpoints between formats.

Into a directory that loads without PyTorch (the default, `--to=jax`):

  python -m actionclip_jax.convert --checkpoint=ViT-B-16.pt --output=/data/clip_b16
  python -m actionclip_jax.convert --checkpoint=/hf/clip-vit-base-patch16 --output=/data/clip_b16
  python -m actionclip_jax.convert --checkpoint=open_clip_b16.pt --activation=gelu --output=DIR
  python -m actionclip_jax.convert --checkpoint=vifi_clip_10_epochs_k400_full_finetuned.pth \
      --clip=ViT-B-16.pt --output=/data/vificlip_k400
  python -m actionclip_jax.convert --checkpoint=openvclip-b16/swa_2_22.pth --output=/data/ovc

Besides CLIP and ActionCLIP files it reads ViFi-CLIP's, Open-VCLIP's and FROSTER's released
checkpoints and records which recipe they came from (`actionclip_jax.importers`); ViFi-CLIP's take
CLIP's token embedding from `--clip`.

The input may be an OpenAI CLIP `.pt`, an ActionCLIP training checkpoint, a Hugging Face
`CLIPModel` folder, an open_clip folder or state dict (plain state dicts need `--activation`). The
output holds the parameters as an orbax checkpoint (`params/`) and the model's sizes in
`actionclip_jax.json`; `actionclip_jax.load_clip(DIR)` reads it on hosts without torch (TPU VMs).

Out to the original ActionCLIP's checkpoint format (needs torch):

  python -m actionclip_jax.convert --to=actionclip-pt --checkpoint=DIR --output=model.pt \
      [--dtype=fp16]

The file loads in the original code (`pretrain:` in its config, or `test.py`) like its own
`model_best.pt`. For mmaction2's ActionCLIP port (transf head only), `--to=mmaction2
--num_frames=T` writes its `{'state_dict': {'clip.*', 'adapter.*'}}` layout instead.
"""

import sys

from absl import app
from absl import flags

from actionclip_jax import export, weights
from actionclip_jax.models.clip import ACTIVATIONS

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Checkpoint file or folder to convert.", required=True
)
_OUTPUT = flags.DEFINE_string(
    "output", None, "Directory (--to=jax) or file (the other formats) to write.", required=True
)
_TO = flags.DEFINE_enum(
    "to", "jax", ["jax", *export.FORMATS],
    "jax: a converted directory; actionclip-pt: the original ActionCLIP's checkpoint file; "
    "mmaction2: a checkpoint of mmaction2's ActionCLIP port.",
)  # fmt: skip
_DTYPE = flags.DEFINE_enum(
    "dtype", "fp32", list(export.DTYPES),
    "Exports only: fp32, or fp16 as the original saves (fp16 conv/linear/attention in CLIP).",
)  # fmt: skip
_NUM_FRAMES = flags.DEFINE_integer(
    "num_frames", None,
    "Exports only: frames of the model (mmaction2: rows of its frame-position table); default: "
    "what the checkpoint fixes, else 8.",
)  # fmt: skip
_ACTIVATION = flags.DEFINE_enum(
    "activation", None, list(ACTIVATIONS),
    "MLP activation of a plain state dict with OpenAI key names (which does not say it): "
    "quick_gelu (OpenAI CLIP) or gelu (most open_clip models).",
)  # fmt: skip
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing output.")
_CLIP = flags.DEFINE_string(
    "clip", None, "OpenAI CLIP file: the token embedding that ViFi-CLIP checkpoints leave out."
)


def main(argv):
    del argv
    try:
        if _TO.value != "jax":
            summary = export.export_actionclip_pt(
                _CHECKPOINT.value,
                _OUTPUT.value,
                dtype=_DTYPE.value,
                overwrite=_OVERWRITE.value,
                activation=_ACTIVATION.value,
                to=_TO.value,
                num_frames=_NUM_FRAMES.value,
                clip_source=_CLIP.value,
            )
            print(f"wrote {_OUTPUT.value}: {summary}")
            return
        if _DTYPE.value != "fp32" or _NUM_FRAMES.value is not None:
            raise app.UsageError("--dtype and --num_frames apply to exports (--to) only")
        meta = weights.convert(
            _CHECKPOINT.value,
            _OUTPUT.value,
            overwrite=_OVERWRITE.value,
            activation=_ACTIVATION.value,
            clip_source=_CLIP.value,
        )
    except (OSError, ValueError, ImportError) as e:  # bad input: one line, no traceback
        sys.exit(f"convert: error: {e}")
    recipe = f" ({meta['recipe']} checkpoint)" if meta.get("recipe") else ""
    print(f"wrote {_OUTPUT.value}{recipe}: {meta}")


if __name__ == "__main__":
    app.run(main)
