r"""Trains and evaluates ActionCLIP as a config describes.

  python -m actionclip_jax.main --config=configs/k400_b16.py --workdir=DIR
  python -m actionclip_jax.main --config=configs/demo.py --workdir=/tmp/demo
  python -m actionclip_jax.main --config=configs/k400_b16.py --workdir=DIR \
      --config.mode=eval --config.init.checkpoint=vit-b-16-8f.pt

This file only parses flags; the logic lives in `train.py` and `evaluate.py`, which import and
test like any library (and run from Colab). On a multi-host TPU slice, run the same command on
every host: `jax.distributed.initialize()` finds the others.
"""

import jax
from absl import app, flags
from ml_collections import config_flags

from actionclip_jax import devices, evaluate, logs, train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and results (or gs://...).")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", None, "Call jax.distributed.initialize() (default: when on a TPU pod slice)."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    devices.configure_xla_flags()  # before anything starts the backend: XLA reads them once
    if _DISTRIBUTED.value or (_DISTRIBUTED.value is None and train.on_multihost_tpu()):
        jax.distributed.initialize()
    config = _CONFIG.value
    logs.quiet_library_logs()
    devices.check_devices(config)
    if config.mode == "train":
        train.train_and_evaluate(config, _WORKDIR.value)
    elif config.mode == "eval":
        evaluate.run(config, _WORKDIR.value)
    else:
        raise app.UsageError(f"config.mode must be train or eval, got {config.mode!r}")


if __name__ == "__main__":
    app.run(main)
