r"""Trains and evaluates ActionCLIP as a config describes.

  python -m actionclip_jax.main --config=configs/k400_b16.py --workdir=DIR
  python -m actionclip_jax.main --config=configs/demo.py --workdir=/tmp/demo
  python -m actionclip_jax.main --config=configs/k400_b16.py --workdir=DIR \
      --config.mode=eval --config.init.checkpoint=vit-b-16-8f.pt

This file only parses flags; the logic lives in `train.py` and `evaluate.py`, which import and
test like any library (and run from Colab). Both turn the config into a run plan first
(`plan.py`), which checks it before anything heavy starts. On a multi-host TPU slice, run the same command on
every host: `jax.distributed.initialize()` finds the others.
"""

import multiprocessing.util
import os
import sys
import threading

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from actionclip_jax import checkpointing, devices, evaluate, logs, train, weights, workdir_lock
from actionclip_jax import plan as plan_lib
from data_pipeline import pipeline

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and results (or gs://...).")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", None, "Call jax.distributed.initialize() (default: when on a TPU pod slice)."
)
flags.mark_flags_as_required(["config", "workdir"])

# Errors that mean "the input is wrong" (a config value, a missing or damaged file): the user
# gets their message as the last line of the output, not a traceback.
USER_ERRORS = (
    plan_lib.ConfigError,
    FileNotFoundError,
    weights.CheckpointError,
    checkpointing.CheckpointFormatError,
    checkpointing.CheckpointRestoreError,
    checkpointing.CheckpointSaveError,
    workdir_lock.WorkdirLockedError,
    pipeline.BadSampleError,
    pipeline.DataWorkerError,
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    devices.configure_xla_flags()  # before anything starts the backend: XLA reads them once
    if _DISTRIBUTED.value or (_DISTRIBUTED.value is None and train.on_multihost_tpu()):
        jax.distributed.initialize()
    config = _CONFIG.value
    logs.quiet_library_logs()
    devices.check_devices(config)
    run = {"train": train.train_and_evaluate, "eval": evaluate.evaluate}.get(config.mode)
    if run is None:
        raise app.UsageError(f"config field mode must be train or eval, got {config.mode!r}")
    try:
        run(config, _WORKDIR.value)
    except USER_ERRORS as err:
        logging.error("%s: %s", type(err).__name__, err)
        # The run's own cleanup has finished (every `finally` in train/evaluate ran). Leave without
        # the interpreter's teardown: after a failed save, orbax's event loop would log the same
        # failure again from each abandoned write, burying this line under pages of tracebacks.
        # multiprocessing's share of that teardown still runs (bounded, in case a process does not
        # stop): it unlinks the named semaphores of grain's worker queues, which Python's resource
        # tracker would otherwise report as leaked, one warning after this line.
        teardown = threading.Thread(target=multiprocessing.util._exit_function, daemon=True)
        teardown.start()
        teardown.join(timeout=30)
        logging.flush()
        sys.stdout.flush()
        sys.stderr.write(f"actionclip_jax: error: {err}\n")
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    app.run(main)
