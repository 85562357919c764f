r"""A process that runs data pipelines, for tests that kill it or watch how it exits.

    python tests/pipeline_child.py serve DATA_DIR WORKERS DECODE_TIMEOUT_S
    python tests/pipeline_child.py exit DATA_DIR WORKERS[,WORKERS...] DECODE_TIMEOUT_S

``DATA_DIR`` holds ``train.txt`` over small videos (test_pipeline's ``data``).

* ``serve``: a training iterator; prints ``ready`` after its first batch, then keeps
  reading batches until it is killed.
* ``exit``: for each worker count, three training batches and a whole evaluation pass,
  each batch through `pipeline.to_global` onto a JAX CPU device (zero-copy there), every
  batch still referenced, no iterator closed; then a normal exit. A careless caller, on
  purpose: nothing it leaves behind may warn of leaked resources.
"""

import os
import sys
import time

from absl import flags

flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags.

from data_pipeline import pipeline


def _kwargs(data_dir, workers, timeout):
    return {
        "root": data_dir,
        "num_frames": 4,
        "input_size": 32,
        "process_index": 0,
        "process_count": 1,
        "worker_count": workers,
        "decode_timeout_s": timeout,
    }


def serve(data_dir, workers, timeout):
    iterator = pipeline.make_train_iterator(
        os.path.join(data_dir, "train.txt"), batch_size=2, **_kwargs(data_dir, workers, timeout)
    )
    next(iterator)
    print("ready", flush=True)
    while True:
        next(iterator)
        time.sleep(0.1)


def careless_exit(data_dir, workers, timeout):
    import jax  # pylint: disable=import-outside-toplevel

    mesh = jax.make_mesh((1,), ("data",), devices=jax.devices()[:1])
    kwargs = _kwargs(data_dir, workers, timeout)
    train = pipeline.make_train_iterator(
        os.path.join(data_dir, "train.txt"), batch_size=2, **kwargs
    )
    kept = [pipeline.to_global(next(train), mesh) for _ in range(3)]
    evaluation = pipeline.make_eval_iterator(
        os.path.join(data_dir, "train.txt"), batch_size=2, **kwargs
    )
    kept += [pipeline.to_global(batch, mesh) for batch in evaluation]
    kept.append(kept)  # A reference cycle as well.
    print("done", len(kept), flush=True)
    return train, evaluation, kept


if __name__ == "__main__":
    mode, data_dir, workers, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    if mode == "serve":
        serve(data_dir, int(workers), timeout)
    else:  # Alive until the interpreter ends.
        KEPT = [careless_exit(data_dir, int(w), timeout) for w in workers.split(",")]
