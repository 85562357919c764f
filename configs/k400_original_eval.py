r"""Kinetics-400 evaluation as the original's `test.py`: 1 clip × 1 centre crop, batch 64, the last
partial batch dropped (19,328 of 19,357 validation videos counted).

  python -m actionclip_jax.main --config=configs/k400_original_eval.py:b16_8f --workdir=DIR \
      --config.init.checkpoint=ckpt/vit-b-16-8f

The argument names the released model (b32_8f, b16_8f, b16_16f, b16_32f; default b16_8f) and sets
the frame count it was trained with; the original's table: 78.36, 81.09, 81.68, 82.32 top-1.
`docs/reproduce.md` has the conversion commands.
"""

from configs import k400_b16

# Released K400 models: name -> (ViT patch size, frames, file name used in docs/reproduce.md).
MODELS = {
    "b32_8f": (32, 8, "vit-b-32-8f.pt"),
    "b16_8f": (16, 8, "vit-b-16-8f.pt"),
    "b16_16f": (16, 16, "vit-b-16-16f.pt"),
    "b16_32f": (16, 32, "vit-b-16-32f.pt"),
}


def get_config(arg=None):
    name = arg or "b16_8f"
    if name not in MODELS:
        raise ValueError(f"k400_original_eval: model must be one of {sorted(MODELS)}, got {name!r}")
    patch, frames, checkpoint = MODELS[name]
    config = k400_b16.get_config()
    config.mode = "eval"
    config.init.checkpoint = checkpoint
    config.model.clip.vision_patch_size = patch  # sizes are read off the checkpoint anyway
    config.data.num_frames = frames
    config.data.num_clips = 1
    config.data.num_crops = 1
    config.data.eval_batch_size = 64  # with drop_last, 302 batches: the original's count
    config.data.drop_last_eval = True
    return config
