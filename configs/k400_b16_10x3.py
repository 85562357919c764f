r"""Kinetics-400 with 10 clips × 3 crops: the paper's 83.8 / 97.1 setting (ViT-B/16, 32 frames).

  python -m actionclip_jax.main --config=configs/k400_b16_10x3.py --workdir=DIR \
      --config.init.checkpoint=ckpt/vit-b-16-32f

Each of the 30 views gets a softmax over classes per template; probabilities are averaged over
templates, then views. An optional argument sets the frames (`:8`, `:16`, `:32`; default 32) to
match the model evaluated. Every validation video counts (no dropped batch); add
`--config.data.drop_last_eval=True` for the original's count.
"""

from configs import k400_b16


def get_config(arg=None):
    frames = int(arg or 32)
    if frames not in (8, 16, 32):
        raise ValueError(f"k400_b16_10x3: frames must be 8, 16 or 32, got {frames}")
    config = k400_b16.get_config()
    config.mode = "eval"
    config.init.checkpoint = f"vit-b-16-{frames}f.pt"
    config.data.num_frames = frames
    config.data.num_clips = 10
    config.data.num_crops = 3
    # Videos per global batch (× 30 views × 32 frames = 7,680 images); lower it on small memory.
    config.data.eval_batch_size = 8
    return config
