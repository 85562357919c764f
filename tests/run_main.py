r"""`python -m actionclip_jax.main` for the tests' subprocesses, with two additions.

* `--record=FILE`: appends one JSON line per training batch this process feeds the model, with
  the dataset indices of its rows (`{"index": [...]}`), so tests can see which data each
  process read and in which order.
* `--num_processes=N --process_id=I --coordinator=localhost:PORT`: first calls
  `jax.distributed.initialize` with these, so that several local CPU processes form one job.

Everything else (flags, config, the run) is `actionclip_jax.main`'s:

  python tests/run_main.py --config=configs/test.py --workdir=DIR --record=DIR/batches.jsonl
"""

import json
import os
import sys

# configs/*.py import `configs.base`: the repository root must be importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
from absl import app, flags

from actionclip_jax import main as main_lib
from data_pipeline import pipeline

_RECORD = flags.DEFINE_string("record", None, "JSON-lines file of the training batches' indices.")
_COORDINATOR = flags.DEFINE_string("coordinator", None, "host:port of the JAX coordinator.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes of the job.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's id.")


def _record_train_batches(path):
    to_global = pipeline.to_global

    def recording(batch, mesh, spec=None):
        if batch["video"].ndim == 5:  # training batches; evaluation ones have a view axis
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"index": [int(i) for i in batch["index"]]}) + "\n")
        return to_global(batch, mesh, spec)

    pipeline.to_global = recording


def _main(argv):
    if _NUM_PROCESSES.value:
        jax.distributed.initialize(
            coordinator_address=_COORDINATOR.value,
            num_processes=_NUM_PROCESSES.value,
            process_id=_PROCESS_ID.value,
        )
    if _RECORD.value:
        _record_train_batches(_RECORD.value)
    main_lib.main(argv)


if __name__ == "__main__":
    app.run(_main)
