r"""A tiny run for tests and CI: the demo's pipeline and loop, a few steps, seconds on a CPU.

python -m actionclip_jax.main --config=configs/test.py --workdir=/tmp/actionclip_test
"""

from configs import demo


def get_config():
    config = demo.get_config()
    config.data.synthetic.train_per_class = 1
    config.data.synthetic.val_per_class = 1
    config.data.synthetic.heldout_per_class = 1
    config.data.batch_size = 8
    config.data.eval_batch_size = 8
    config.data.workers = 0
    config.model.clip.vision_layers = 1
    config.model.clip.transformer_layers = 1
    config.model.clip.vision_width = 64
    config.model.clip.transformer_width = 64
    config.model.clip.transformer_heads = 1
    config.model.clip.embed_dim = 32
    # The paper's temporal head with its own optimiser group, which the demo (frame averaging)
    # does not have: the tests' runs cover resuming, exporting and scoring it.
    config.model.head = "transf"
    config.model.head_layers = 2
    config.optim.fusion_ratio = 10.0
    # Decoder processes under a time limit, as for real data (the demo's own clips skip them).
    config.data.decode_timeout_s = 60.0
    config.optim.epochs = 2
    config.optim.warmup_epochs = 1
    config.checkpoint.every_steps = 2
    config.log_every_steps = 1
    config.eval_every_epochs = 1
    return config
