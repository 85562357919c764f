"""Two JAX processes on one machine (CPU, gloo collectives) train like one process.

Each process runs `tests/run_main.py` (`actionclip_jax.main` plus `jax.distributed.initialize`
and a record of its training batches) with one CPU device, on one shared workdir. Their result is
compared with the session's one-process reference run of the same config (8 devices, same global
batch of 8). A peer that never starts makes the other abort, so every process runs under a
timeout and the test kills both when either fails.
"""

import re
from pathlib import Path

import jax
import numpy as np
import pytest
import train_helpers as h

STEPS = 2
OVERRIDES = (f"--config.max_steps={STEPS}", "--config.data.workers=0")


def _run_two_processes(basetemp, workdir):
    port = h.free_port()
    procs = []
    for i in range(2):
        extra = (f"--coordinator=localhost:{port}", "--num_processes=2", f"--process_id={i}")
        procs.append(
            h.start(
                basetemp,
                workdir,
                *OVERRIDES,
                log=f"{workdir}.p{i}.log",
                devices=1,
                record=f"{workdir}.p{i}.batches.jsonl",
                extra=extra,
            )
        )
    try:
        codes = [h.finish(p) for p in procs]
    finally:
        for p in procs:  # a failed peer: do not leave the other waiting for it
            if p.poll() is None:
                p.kill()
            h.reap(p)
    logs = [Path(f"{workdir}.p{i}.log").read_text(errors="replace") for i in range(2)]
    if codes != [0, 0]:
        raise AssertionError(f"exit codes {codes}:\n" + "\n----\n".join(t[-4000:] for t in logs))
    return logs


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    basetemp = tmp_path_factory.getbasetemp()
    reference = h.reference_run(basetemp)  # first: the peers then start together
    workdir = h.session_dirs(basetemp)["runs"] / "two_processes"
    logs = _run_two_processes(basetemp, workdir)
    return basetemp, reference, workdir, logs, h.eval_results(workdir)


def _first_moments(state) -> dict:
    """Adam's first moment (0.1 x the last gradient + ...) of every parameter, by path."""
    return {k: mu for k, (mu, _) in _moments_and_groups(state).items()}


def _moments_and_groups(state) -> dict:
    """Per parameter path: (Adam's first moment, the name of its optimiser group)."""
    out = {}
    for name, group in state["opt_state"]["inner_states"].items():
        if not group or not group.get("inner_state"):
            continue  # the (empty) state of the `frozen` group
        for path, m in jax.tree_util.tree_leaves_with_path(group["inner_state"][0]["mu"]):
            out[jax.tree_util.keystr(path)] = (m, name)
    return out


def _summed_lr(basetemp, steps) -> dict:
    """Per optimiser group, the learning rates of the first `steps` steps added up."""
    from actionclip_jax import plan as plan_lib  # pylint: disable=import-outside-toplevel
    from actionclip_jax import sharding, train  # pylint: disable=import-outside-toplevel

    config = h.make_test_config(basetemp)
    with open(config.data.train) as f:  # one video per line
        steps_per_epoch = len(f.read().split("\n")[:-1]) // config.data.batch_size
    plan = plan_lib.make_plan(config, h.session_dirs(basetemp)["runs"] / "lr_plan")
    state_plan = train.plan_train_state(plan, sharding.make_mesh(), steps_per_epoch)
    return {g: sum(float(s(i)) for i in range(steps)) for g, s in state_plan.schedules.items()}


def _adam_noise(a, b) -> dict:
    """Per parameter path, the elements where Adam's update is rounding noise.

    A parameter whose gradient is zero in exact arithmetic (the attention key biases: softmax
    ignores a constant added to every key) gets rounding-noise gradients of ~1e-9, which Adam
    divides by their own magnitude: its step is then of the order of the learning rate with a
    random sign, in any two runs that sum in another order. Such elements are told apart by a
    first moment below 1e-7 in either run (but not exactly 0 in both: a parameter with no
    gradient at all, such as an unused token embedding, moves identically).
    """
    mu_a, mu_b = _first_moments(a), _first_moments(b)
    return {
        k: ((np.abs(mu_a[k]) < 1e-7) | (np.abs(mu_b[k]) < 1e-7)) & ((mu_a[k] != 0) | (mu_b[k] != 0))
        for k in mu_b
    }


@pytest.mark.slow
def test_two_processes_read_disjoint_data_and_train_like_one(two_process_run):
    basetemp, reference, workdir, logs, results = two_process_run
    for log in logs:
        assert "processes: 2" in log and "devices: 2 (1 per process)" in log

    # Each process read its own half of every global batch; together, the one-process batch.
    ref_batches = h.records(f"{reference}.batches.jsonl")[:STEPS]
    mine = [h.records(f"{workdir}.p{i}.batches.jsonl") for i in range(2)]
    assert len(mine[0]) == len(mine[1]) == STEPS
    for step, (a, b) in enumerate(zip(*mine, strict=True)):
        assert len(a) == len(b) == 4
        assert not set(a) & set(b), f"step {step + 1}: both processes read {set(a) & set(b)}"
        assert sorted(a + b) == sorted(ref_batches[step])

    # Same parameters and optimiser state as the one-process run, within fp32 tolerance.
    two, one = h.load_state(workdir, STEPS), h.load_state(reference, STEPS)
    assert int(two["step"]) == int(one["step"]) == STEPS
    np.testing.assert_array_equal(two["rng"], one["rng"])
    noise = _adam_noise(two, one)
    groups = {k: g for k, (_, g) in _moments_and_groups(one).items()}
    summed_lr = _summed_lr(basetemp, STEPS)
    checked = 0
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(two["params"]), jax.tree.leaves(one["params"])
    ):
        key = jax.tree_util.keystr(path)
        mask = ~noise[key]
        np.testing.assert_allclose(a[mask], b[mask], rtol=1e-5, atol=1e-6, err_msg=key)
        # Noise elements: each step moves them by about ± their group's lr in either run, so
        # the runs end at most twice the summed learning rate apart.
        bound = 2 * summed_lr[groups[key]] * 1.01
        np.testing.assert_allclose(a[~mask], b[~mask], atol=bound, err_msg=key)
        checked += mask.sum()
    assert checked > 0.99 * sum(x.size for x in jax.tree.leaves(one["params"]))
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(two["opt_state"]), jax.tree.leaves(one["opt_state"])
    ):
        # Summation order differs: elements that are sums of cancelling terms get an absolute
        # tolerance on the scale of the leaf.
        atol = 1e-4 * float(np.abs(b).max()) if b.size else 0.0
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=atol, err_msg=jax.tree_util.keystr(path))

    # Evaluation over both processes counted every validation video once.
    assert results["num_videos"] == 30 and results["checkpoint_step"] == STEPS


@pytest.mark.slow
def test_resume_on_one_process_restarts_epoch_with_warning(two_process_run):
    basetemp, reference, workdir, _, _ = two_process_run
    log = h.run(
        basetemp,
        workdir,
        "--config.max_steps=3",
        "--config.data.workers=0",
        log=f"{workdir}.resume.log",
        record=f"{workdir}.resume.batches.jsonl",
    )
    warning = re.search(r"the checkpoint at step 2 was written by .*", log)
    assert warning, log[-3000:]
    text = warning.group(0)
    assert "'process_count': 2" in text and "'process_count': 1" in text
    assert "model and optimiser are restored" in text
    assert "data order restarts at the start of epoch 0" in text
    assert "resumed from step 2" not in log  # not an exact resume
    # The data did restart at the epoch's first global batch, read whole by the one process.
    (batch,) = h.records(f"{workdir}.resume.batches.jsonl")
    assert batch == h.records(f"{reference}.batches.jsonl")[0]
    assert h.complete_steps(workdir)[-1] == 3
    assert h.eval_results(workdir)["checkpoint_step"] == 3
